"""What every benchmark runs against: PostgreSQL, the stub provider and the local Secret Manager (a process of their
own), a migrated database, the broker's environment and an in-process broker to seed and drive with."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import mkdtemp

from shared.bootstrap import Container
from tests.bench.stub_provider import RemoteStub
from tests.support.broker_env import DATA_KEY, in_process_broker
from tests.support.postgres import DatabaseFactory, Server, running_cluster
from tests.support.seed import seed_integration

API_KEY = "benchmark-internal-key-0123456789"


class Env(dict[str, str]):
    def setenv(self, name: str, value: str) -> None:  # the MonkeyPatch interface in_process_broker expects
        os.environ[name] = value


@dataclass
class Stack:
    server: Server
    stub: RemoteStub
    env: Env
    app: Container


def providers_file(directory: Path, stub: RemoteStub) -> Path:
    path = directory / "providers.yaml"
    path.write_text(
        "providers:\n"
        f"  rotating:\n    display_name: Rotating\n    auth_mode: oauth2\n"
        f"    authorization_url: {stub.url}/authorize\n    token_url: {stub.url}/token\n"
        "    refresh_token_rotates: true\n"
        f"  steady:\n    display_name: Non-rotating\n    auth_mode: oauth2\n"
        f"    authorization_url: {stub.url}/authorize\n    token_url: {stub.url}/steady/token\n",
        encoding="utf-8",
    )
    return path


def migrated_database(server: Server) -> str:
    from shared.adapters import schema
    from shared.adapters.db import engine_for_url

    name = DatabaseFactory(server, "template0").create()
    engine = engine_for_url(server.url(name))
    schema.upgrade(engine)
    engine.dispose()
    return server.url(name)


@contextmanager
def running_stack(latency: float, concurrency: int = 16) -> Iterator[Stack]:
    scratch = Path(mkdtemp(prefix="broker-bench-"))
    with ExitStack() as stack:
        server = stack.enter_context(running_cluster())
        stub = stack.enter_context(RemoteStub.serving(latency))
        env = Env(
            DATABASE_URL=migrated_database(server), SECRET_BACKEND="gcp", GCP_PROJECT="bench",
            SECRET_MANAGER_ENDPOINT=stub.grpc_endpoint, DATA_KEYS=f"1:{DATA_KEY}",
            PROVIDERS_FILE=str(providers_file(scratch, stub)), INTERNAL_API_KEYS=API_KEY, ROTATING_CLIENT_ID="bench",
            ROTATING_CLIENT_SECRET="bench-secret", STEADY_CLIENT_ID="bench", STEADY_CLIENT_SECRET="bench-secret",
            REFRESH_CONCURRENCY=str(concurrency), REFRESH_BATCH_SIZE="100", DB_POOL_SIZE=str(max(20, concurrency + 6)),
            REFRESH_DEADLINE="3600", LOG_LEVEL="WARNING",
        )  # fmt: skip
        from shared.providers.catalog import record_validated

        record_validated(env["PROVIDERS_FILE"])  # as the image build does (`broker check-catalog`)
        app = stack.enter_context(in_process_broker(env, env))
        yield Stack(server, stub, env, app)


def seed_many(app: Container, stub: RemoteStub, provider: str, n: int, prefix: str) -> None:
    """`n` integrations of `provider` whose tokens expire in 30 s (due for the job), each with a live refresh token."""
    now = datetime.now(UTC)

    def one(i: int) -> None:
        seed_integration(
            app, provider, f"{prefix}-{i}", refresh_token=stub.mint(), access_token=f"at-{prefix}-{i}",
            expires_at=now + timedelta(seconds=30), refreshed_at=now - timedelta(hours=1),
        )  # fmt: skip

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(n)))
