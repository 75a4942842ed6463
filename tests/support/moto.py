"""moto's server mode for AWS Secrets Manager: a real HTTP endpoint on loopback that boto3 talks to unchanged."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

from tests.support.postgres import free_port

REGION = "eu-west-1"
# moto accepts any credentials; these are set for every boto3 client of the test session (and its subprocesses).
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


@contextmanager
def running_moto() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    for name, value in CREDENTIALS.items():
        os.environ.setdefault(name, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        yield endpoint
    finally:
        server.stop()


def reset(endpoint: str) -> None:
    """Forget every secret (moto's own reset API)."""
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()


def client(endpoint: str, timeout: float = 10.0) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1, "mode": "standard"})
    return boto3.client("secretsmanager", region_name=REGION, endpoint_url=endpoint, config=config)
