"""Python client for the Integrations Broker: access tokens cached until near their expiry, one request per
integration however many callers ask at once, and an httpx/requests auth that retries once on a 401.

    broker = BrokerClient(base_url, api_key=...)        # or id_token_audience=... on Google Cloud
    token = broker.token(integration_id, min_ttl=60)
    httpx.get(url, auth=broker.auth(integration_id))
"""

from broker_client._policy import RetryPolicy
from broker_client.aio import AsyncBrokerClient
from broker_client.auth import AsyncBrokerAuth, BrokerAuth
from broker_client.client import BrokerClient
from broker_client.errors import (
    BrokerError,
    IntegrationNotFound,
    ReauthRequired,
    TemporarilyUnavailable,
    Unauthorized,
)
from broker_client.models import Credentials, Token

__all__ = [
    "AsyncBrokerAuth",
    "AsyncBrokerClient",
    "BrokerAuth",
    "BrokerClient",
    "BrokerError",
    "Credentials",
    "IntegrationNotFound",
    "ReauthRequired",
    "RetryPolicy",
    "TemporarilyUnavailable",
    "Token",
    "Unauthorized",
]
