"""Thin entry points, one module per Cloud Run function: parse the request, call one use case, respond."""
