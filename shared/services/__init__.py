"""Use cases: each receives the ports it needs and returns a value or raises a domain error."""
