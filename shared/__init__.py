"""Integrations broker: OAuth handshakes, secret custody and token refresh for a product's users."""
