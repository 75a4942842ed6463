"""AsyncBrokerClient against the real token endpoint: the same cache, single flight, 401 retry and errors."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from broker_client import AsyncBrokerClient, ReauthRequired

from tests.sdk.conftest import API_KEY, Live
from tests.support.engine import expire, refresh_grants

REFUSED = "an-access-token-the-provider-no-longer-accepts"


def client(stack: Live) -> AsyncBrokerClient:
    async def sent(request: httpx.Request) -> None:
        stack.sent.append(request)

    http = httpx.AsyncClient(timeout=30, event_hooks={"request": [sent]})
    return AsyncBrokerClient(stack.url, api_key=API_KEY, http_client=http)


def test_fifty_concurrent_tasks_make_one_request_and_then_read_the_cache(stack: Live) -> None:
    integration_id = stack.connect("async-crowd")

    async def main() -> set[str]:
        async with client(stack) as broker:
            crowd = await asyncio.gather(*(broker.token(integration_id) for _ in range(50)))
            later = await broker.token(integration_id)
            return {token.access_token for token in [*crowd, later]}

    assert len(asyncio.run(main())) == 1
    assert len(stack.sent) == 1
    assert stack.reads(integration_id) == 1


def test_a_401_triggers_one_forced_refresh_and_one_retry(stack: Live) -> None:
    integration_id = stack.connect("async-refused")
    stack.plant(integration_id, REFUSED)
    stack.provider.reset_stats()

    async def main() -> list[httpx.Response]:
        async with client(stack) as broker, httpx.AsyncClient(auth=broker.auth(integration_id)) as http:
            # ten requests that all see the same refused token share one forced refresh
            return await asyncio.gather(*(http.get(stack.provider.userinfo_endpoint) for _ in range(10)))

    answers = asyncio.run(main())
    assert [answer.status_code for answer in answers] == [200] * 10
    assert len(stack.forced()) == 1
    assert refresh_grants(stack.provider) == {"success": 1, "errors": {}}


def test_reauth_required_raises_reauth_required(stack: Live) -> None:
    integration_id = stack.connect("async-gone")
    stack.provider.fail_token("invalid_grant")
    expire(stack.app, integration_id)

    async def main() -> None:
        async with client(stack) as broker:
            await broker.token(integration_id)

    with pytest.raises(ReauthRequired) as raised:
        asyncio.run(main())
    assert raised.value.code == "reauth_required"


def test_a_cancelled_caller_does_not_cancel_the_others_request(stack: Live) -> None:
    integration_id = stack.connect("async-cancel")

    async def main() -> str:
        async with client(stack) as broker:
            first = asyncio.create_task(broker.token(integration_id))
            second = asyncio.create_task(broker.token(integration_id))
            await asyncio.sleep(0)  # both are waiting on the one request
            first.cancel()
            return (await second).access_token

    assert asyncio.run(main())
    assert len(stack.sent) == 1
