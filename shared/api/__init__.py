"""HTTP surface of functions that serve several routes: a tiny path router, handlers, public views."""
