"""P6 (`make bench-scale`): the refresh fan-out at a million integrations, simulated on one machine.

A million active integrations in PostgreSQL, their one-hour tokens expiring evenly over the next hour. N worker
processes (1, 2 and 4 in turn) each run what one `token_refresh` instance does for a shard: claim due rows with the
broker's own claim, one provider's per claim as a stream of fan-out shards (`SqlRefreshStore.claim_due`: FOR UPDATE
SKIP LOCKED on the (provider, expiry) index, a lease), call the
stub provider (fixed latency) for each, and make the broker's fenced row write — no Secret Manager (a non-rotating
provider's refresh writes nothing there; the quota arithmetic is in the README). Reported: sustained refreshes/s
for each N, the database's time per claim (EXPLAIN ANALYZE of the real statement: it must stay O(batch), not
O(table)) — the unsharded job's, a shard's and the dispatcher's count —, and that no integration was refreshed
twice.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from tests.bench.stack import migrated_database
from tests.bench.stub_provider import RemoteStub
from tests.support.postgres import running_cluster

ROOT = Path(__file__).resolve().parents[2]
HORIZON, LEASE = timedelta(minutes=15), timedelta(seconds=60)
PROVIDERS = 4  # the seed spreads the rows over provider-0 … provider-3
SEED = """
INSERT INTO entity_integrations (
    id, entity_id, provider, credential_type, status, account_subject, granted_scopes, secret_ref, secret_version,
    token_expires_at, access_token_ciphertext, access_token_key_version, credential_version, consecutive_failures,
    consecutive_refusals, config, last_refreshed_at, created_at, updated_at)
SELECT CAST(md5(CAST(i AS text)) AS uuid), 'entity-' || i, 'provider-' || (i % 4), 'oauth2', 'active', 's' || i,
    CAST('[]' AS jsonb), 'sim-' || i, 1, now() + (i % 3600) * interval '1 second', CAST('sealed' AS bytea), 1, 0, 0,
    0, CAST('{}' AS jsonb), now() - interval '1 hour', now(), now()
FROM generate_series(FIRST_ROW, LAST_ROW) AS i
"""


def seed(url: str, rows: int) -> float:
    from shared.adapters.pg_pool import url_connect

    started = time.perf_counter()
    conn = url_connect(url)()
    cursor = conn.cursor()
    for start in range(1, rows + 1, 100_000):
        last = min(rows, start + 99_999)
        cursor.execute(SEED.replace("FIRST_ROW", str(int(start))).replace("LAST_ROW", str(int(last))))
        conn.commit()
    cursor.execute("ANALYZE entity_integrations")
    conn.commit()
    conn.close()
    return time.perf_counter() - started


def explain_claim(url: str, batch: int, provider: str | None = None, count: bool = False) -> dict[str, Any]:
    """EXPLAIN ANALYZE of the broker's claim statement (a shard's, with `provider`; with `count` the dispatcher's
    per-provider count instead), captured as it is sent, in a transaction rolled back."""
    from sqlalchemy import event

    from shared.adapters.db import engine_for_url
    from shared.adapters.pg_pool import url_connect
    from shared.adapters.sql_refresh import SqlRefreshStore

    engine = engine_for_url(url)
    sent: list[tuple[str, Any]] = []
    word = "GROUP BY" if count else "UPDATE"
    event.listen(engine, "before_cursor_execute", lambda *a: sent.append((a[2], a[3])) if word in a[2] else None)
    now = datetime.now(UTC)
    if count:
        SqlRefreshStore(engine).count_due(HORIZON, now)
    else:  # warm, and capture
        SqlRefreshStore(engine).claim_due(HORIZON, batch, "explain", LEASE, now, now, provider=provider)
    statement, parameters = sent[-1]
    engine.dispose()
    conn = url_connect(url)()
    cursor = conn.cursor()
    cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters)
    plan = cursor.fetchone()[0][0]
    conn.rollback()
    cursor.execute("UPDATE entity_integrations SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = %s",
                   ("explain",))  # fmt: skip
    conn.commit()
    conn.close()
    nodes: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        name = node["Node Type"] + (f" on {node['Index Name']}" if "Index Name" in node else "")
        nodes.append(f"{name} ({node.get('Actual Rows', 0) * node.get('Actual Loops', 1):.0f} rows)")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return {"execution_ms": plan["Execution Time"], "planning_ms": plan["Planning Time"], "plan": nodes}


def worker(url: str, stub_url: str, seconds: float, concurrency: int, out: Any) -> None:
    import requests
    from requests.adapters import HTTPAdapter

    from shared.adapters.db import engine_for_url
    from shared.adapters.sql_refresh import SqlRefreshStore
    from shared.domain.models import AuditEvent, Integration

    store = SqlRefreshStore(engine_for_url(url, pool_size=concurrency + 2))
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_maxsize=concurrency))
    owner = f"sim-{uuid4().hex[:8]}"

    def refresh(integration: Integration) -> bool:
        session.post(f"{stub_url}/sim/token", data={"refresh_token": "x"}, timeout=10).raise_for_status()
        now = datetime.now(UTC)
        values = {"token_expires_at": now + timedelta(hours=1), "last_refreshed_at": now,
                  "access_token_ciphertext": b"sealed-again", "consecutive_failures": 0}  # fmt: skip
        event = AuditEvent(owner, "token.refresh", "success", integration.entity_id, integration.id, "sim")
        return (
            store.write(integration.id, integration.credential_version, owner, values, [event], now, bump=True)
            is not None
        )

    began, done_count = datetime.now(UTC), 0
    claims: list[float] = []
    started = time.monotonic()
    running: set[Future[bool]] = set()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        while True:
            free = concurrency - len(running)
            if time.monotonic() - started < seconds and free >= max(1, concurrency // 4):
                sent = time.perf_counter()
                # a stream of shards: each claim is one provider's, as a fan-out task's
                provider = f"provider-{len(claims) % PROVIDERS}"
                batch = store.claim_due(HORIZON, free, owner, LEASE, datetime.now(UTC), began, provider=provider)
                claims.append((time.perf_counter() - sent) * 1000)
                running |= {pool.submit(refresh, integration) for integration in batch}
            if not running:
                break
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            done_count += sum(1 for f in finished if f.result())
    out.put({"refreshed": done_count, "seconds": time.monotonic() - started, "claim_ms": claims})


def run(url: str, stub: RemoteStub, workers: int, seconds: float, concurrency: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    procs = [context.Process(target=worker, args=(url, stub.url, seconds, concurrency, out)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    elapsed = max(r["seconds"] for r in results)
    claims = [ms for r in results for ms in r["claim_ms"]]
    return {
        "refreshed": sum(r["refreshed"] for r in results),
        "refreshes_per_s": sum(r["refreshed"] for r in results) / elapsed,
        "claim_wall_ms_median": statistics.median(claims),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="each run's claiming time")
    parser.add_argument("--concurrency", type=int, default=16, help="provider calls in flight per worker")
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()
    report: dict[str, Any] = {"rows": args.rows, "args": vars(args), "refreshes_per_s": {}, "runs": {}}
    with running_cluster() as server, RemoteStub.serving(args.latency) as stub:
        url = migrated_database(server)
        report["seed_seconds"] = seed(url, args.rows)
        report["claim"] = explain_claim(url, 100)
        report["shard_claim"] = explain_claim(url, 100, provider="provider-1")
        report["dispatch_count"] = explain_claim(url, 0, count=True)
        for workers in (1, 2, 4):
            result = run(url, stub, workers, args.seconds, args.concurrency)
            report["runs"][str(workers)] = result
            report["refreshes_per_s"][str(workers)] = result["refreshes_per_s"]
            rate, claim_ms = result["refreshes_per_s"], result["claim_wall_ms_median"]
            print(f"N={workers}: {rate:.0f} refreshes/s, claim {claim_ms:.1f} ms (wall, median)", flush=True)
        report["refreshed_twice"] = _refreshed_twice(url)
    (ROOT / "bench-scale.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    claim = report["claim"]
    print(f"P6 simulation, {args.rows:,} integrations, latency {args.latency}s, {args.concurrency} calls in flight per"
          f" worker: refreshes/s by workers {report['refreshes_per_s']}")  # fmt: skip
    print(f"    claim of 100 at {args.rows:,} rows: {claim['execution_ms']:.2f} ms in the database "
          f"(planning {claim['planning_ms']:.2f} ms); plan: {' > '.join(claim['plan'])}")  # fmt: skip
    explained = {"shard_claim": "a shard's claim of 100 (one provider)", "dispatch_count": "the dispatch's count"}
    for key, what in explained.items():
        plan = report[key]
        print(f"    {what} at {args.rows:,} rows: {plan['execution_ms']:.2f} ms in the database "
              f"(planning {plan['planning_ms']:.2f} ms); plan: {' > '.join(plan['plan'])}")  # fmt: skip
    print(f"    integrations refreshed twice: {report['refreshed_twice']} (must be 0)")
    return 0


def _refreshed_twice(url: str) -> int:
    from shared.adapters.pg_pool import url_connect

    conn = url_connect(url)()
    cursor = conn.cursor()
    cursor.execute("SELECT count(*) FROM entity_integrations WHERE credential_version > 1")
    (count,) = cursor.fetchone()
    conn.close()
    return int(count)


if __name__ == "__main__":
    sys.exit(main())
