"""The backend client (sdk/python, `broker_client`) against the real token endpoint and oidc-provider."""
