"""Hostile values in every string parameter of every operation, over real HTTP (the five functions served by
functions-framework) on PostgreSQL: never a 5xx, every refusal a documented 4xx with a stable code, and a
refused request stores nothing. Schemathesis (`make check-api`) generates from the schema; this table holds what
it does not think of: NUL, C0/C1 and bidi controls, full-width and compatibility characters, lone surrogates in
JSON escapes, bytes that are not UTF-8, and sizes past every limit."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from sqlalchemy import Engine, func, select

from shared.adapters.db import engine_for_url
from shared.adapters.orm import ConnectSessionRow, IntegrationRow, OAuthStateRow, VaultSecretVersionRow
from tests.support.broker_env import DATA_KEY
from tests.support.openapi import assert_conforms
from tests.support.postgres import DatabaseFactory, free_port
from tests.support.processes import Served, serving_function

ENTITY = "hostile"
KEY = "internal-key-for-hostile-input-0123456789"
API_KEY = "sk-live-abcdefghijklmnopqrstuvwxyz012345"
APP = "http://127.0.0.1:9/app/"

# Text a JSON encoder or a URL encoder carries faithfully: what the broker's own rules must refuse or keep.
TEXT = {
    "nul": "\x00",
    "nul-inside": "a\x00b",
    "c0": "\x01\x08\x1b[31m\x7f",
    "crlf": "x\r\nSet-Cookie: a=b",
    "c1": "a\x85\x9bb",
    "bidi": "\u202egnp.exe\u2066",
    "zero-width": "\u200b\ufeff",
    "separators": "\u2028\u2029",
    "full-width": "\uff0f\uff03\uff3b\uff20\uff1a\uff05",  # full-width / # [ @ : %
    "compat-digits": "\u00b2\u2460\u0663",  # superscript two, circled one, Arabic-Indic three
    "combining": "e\u0301" * 40,
    "emoji": "\U0001f600\U0001f468\u200d\U0001f469",
    "long": "x" * 5000,
    "markup": "<script>alert(1)</script>'\"%s{0}${x}",
    "traversal": "../..\\..%2e%2e/",
}
# Bytes between the quotes of a JSON string: escapes and encodings that are not text.
JSON_RAW = {
    "lone-high": rb"\ud800",
    "lone-low": rb"\udc00x",
    "reversed-pair": rb"\udc00\ud800",
    "escaped-nul": rb"\u0000",
    "raw-control": b"\x01",
    "not-utf8": b"\xff\xfe",
    "overlong": b"\xc0\xaf",
    "utf8-surrogate": b"\xed\xa0\x80",
    "huge": b"x" * 70_000,
}
# Percent-encoded bytes for queries and paths, sent as they are.
URL_RAW = {
    "pct-nul": "%00",
    "pct-not-utf8": "%FF%FE",
    "pct-overlong": "%C0%AF",
    "pct-surrogate": "%ED%A0%80",
    "pct-newline": "a%0Ab",
    "pct-huge": "y" * 9000,
}
# JSON numbers in place of a string: what the grammar cannot carry back, and integers past double precision.
JSON_NUMBERS = {
    "nan": b"NaN",
    "infinity": b"Infinity",
    "minus-infinity": b"-Infinity",
    "overflow": b"1e400",
    "nested-overflow": b'[1, {"x": -1e999}]',
    "past-2^53": b"9007199254740993",
    "many-digits": b"9" * 5000,
}
HEADER_RAW = {
    "nul": b"\x00",
    "not-utf8": b"\xff\xfe",
    "latin1": "caf\u00e9".encode("latin-1"),
    "c1": b"a\x85b",
    "control": b"a\x01\x1bb",
    "huge": b"z" * 9000,
    "spaces": b"a  b",
}


@dataclass
class Stack:
    served: dict[str, Served]
    engine: Engine
    victim: str

    def url(self, function: str, path: str) -> str:
        return f"{self.served[function]}{path}"

    def snapshot(self) -> tuple[Any, ...]:
        with self.engine.connect() as conn:
            counts = tuple(
                conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in (IntegrationRow, OAuthStateRow, VaultSecretVersionRow, ConnectSessionRow)
            )
            victim = conn.execute(
                select(IntegrationRow.label, IntegrationRow.config, IntegrationRow.status, IntegrationRow.updated_at)
                .where(IntegrationRow.id == self.victim)
            ).one()  # fmt: skip
        return (*counts, tuple(victim))

    def flow(self) -> tuple[str, dict[str, str]]:
        """A started connect flow: its state and the browser binding cookie."""
        started = requests.post(
            self.url("oauth_start", "/oauth/start"), json={"provider": "demo"}, headers={"X-Entity-Id": ENTITY},
            timeout=10,
        )  # fmt: skip
        assert started.status_code == 200, started.text
        state = parse_qs(urlsplit(started.json()["authorization_url"]).query)["state"][0]
        return state, dict(started.cookies)


@pytest.fixture(scope="module")
def stack(pg_databases: DatabaseFactory) -> Iterator[Stack]:
    name = pg_databases.create()
    callback_port = free_port()
    env = {
        "DATABASE_URL": pg_databases.server.url(name), "SECRET_BACKEND": "database", "DATA_KEYS": f"1:{DATA_KEY}",
        "ENVIRONMENT": "development", "AUTH_MODE": "dev", "INTERNAL_API_KEYS": KEY,
        "DEMO_CLIENT_ID": "demo-client", "DEMO_CLIENT_SECRET": "demo-client-secret-value",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{callback_port}", "ALLOWED_RETURN_URLS": APP,
        "ALLOWED_ORIGINS": "http://127.0.0.1:9",
        "PROVIDER_TIMEOUT": "1", "LOG_LEVEL": "WARNING",
    }  # fmt: skip
    engine = engine_for_url(env["DATABASE_URL"])
    with (
        serving_function("oauth_start", env) as start,
        serving_function("oauth_callback", env, port=callback_port) as callback,
        serving_function("integrations", env) as integrations,
        serving_function("token_fetch", env) as fetch,
        serving_function("token_refresh", env) as refresh,
    ):
        served = {"oauth_start": start, "oauth_callback": callback, "integrations": integrations,
                  "token_fetch": fetch, "token_refresh": refresh}  # fmt: skip
        created = requests.post(
            f"{integrations}/integrations", headers={"X-Entity-Id": ENTITY}, timeout=10,
            json={"provider": "openai", "credentials": {"api_key": API_KEY}, "label": "victim", "config": {"k": 1}},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        yield Stack(served, engine, created.json()["id"])
    engine.dispose()
    pg_databases.drop(name)


# ---- how each parameter is sent ----------------------------------------------------------------------------------

Sender = Callable[[Stack, "bytes | str"], requests.Response]


def _json_with(base: dict[str, Any], pointer: str, raw: bytes) -> bytes:
    """`base` as JSON with the string at `pointer` (`a.b`; `a.<key>` puts the hostile text in a key) being `raw`."""
    marker = "\u2603MARK\u2603"
    doc = json.loads(json.dumps(base))
    *parents, last = pointer.split(".")
    node = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if last == "<key>":
        node[marker] = "v"
    elif isinstance(node, list):
        node[int(last)] = marker
    else:
        node[last] = marker
    encoded = json.dumps(doc, ensure_ascii=True).encode()
    return encoded.replace(json.dumps(marker).encode()[1:-1], raw)


def _as_json_raw(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()[1:-1]


def body(
    function: str, method: str, path: str, base: dict[str, Any], pointer: str, *, prefix: str = "", raw: bool = False
) -> Sender:
    """`prefix` + the value as the string at `pointer`; `raw`: the value's bytes replace the string, quotes too."""

    def send(stack: Stack, value: bytes | str) -> requests.Response:
        if raw:
            assert isinstance(value, bytes)
            data = _json_with(base, pointer, b"\x00RAW\x00").replace(b'"\x00RAW\x00"', value)
        else:
            data = _json_with(base, pointer, _as_json_raw(prefix) + _as_json_raw(value))
        return requests.request(
            method, stack.url(function, path.format(id=stack.victim)), data=data, timeout=15,
            headers={"X-Entity-Id": ENTITY, "Content-Type": "application/json", "Authorization": f"Bearer {KEY}"},
        )  # fmt: skip

    return send


def query(function: str, method: str, path: str, base: dict[str, str], name: str, flow: bool = False) -> Sender:
    def send(stack: Stack, value: bytes | str) -> requests.Response:
        params = dict(base)
        cookies: dict[str, str] = {}
        if flow:
            params["state"], cookies = stack.flow()
        encoded = value if isinstance(value, str) and value in URL_RAW.values() else quote(str(value), safe="")
        pairs = [f"{k}={quote(v, safe='')}" for k, v in params.items() if k != name] + [f"{name}={encoded}"]
        url = stack.url(function, path.format(id=stack.victim)) + "?" + "&".join(pairs)
        return requests.request(
            method, url, cookies=cookies, allow_redirects=False, timeout=15,
            headers={"X-Entity-Id": ENTITY, "Authorization": f"Bearer {KEY}"},
        )  # fmt: skip

    return send


def path_segment(function: str, method: str, template: str) -> Sender:
    def send(stack: Stack, value: bytes | str) -> requests.Response:
        encoded = value if isinstance(value, str) and value in URL_RAW.values() else quote(str(value), safe="")
        return requests.request(
            method, stack.url(function, template.format(id=encoded)), timeout=15,
            headers={"X-Entity-Id": ENTITY, "Authorization": f"Bearer {KEY}"},
        )  # fmt: skip

    return send


def header(function: str, method: str, path: str, name: str) -> Sender:
    def send(stack: Stack, value: bytes | str) -> requests.Response:
        headers: dict[str, str | bytes] = {"X-Entity-Id": ENTITY, "Authorization": f"Bearer {KEY}"}
        headers[name] = value if isinstance(value, bytes) else value.encode("utf-8")
        return requests.request(method, stack.url(function, path.format(id=stack.victim)), headers=headers,
                                timeout=15)  # fmt: skip

    return send


START = {"provider": "demo", "scopes": ["profile"], "return_to": APP, "label": "ok", "integration_id": None}
CREATE = {"provider": "openai", "credentials": {"api_key": API_KEY}, "label": "ok", "config": {"k": "v"}}
PATCH = {"label": "ok", "config": {"k": "v"}}
ID = "/integrations/{id}"
ID_VALUE = "0190a5d0-0000-7000-8000-000000000000"
REPLAY = {"integration_id": ID_VALUE, "since": "2026-01-01T00:00:00Z", "until": "2026-02-01T00:00:00Z"}
SESSION = {"entity_id": ENTITY, "allowed_origin": "http://127.0.0.1:9", "allowed_providers": ["demo"], "label": "ok",
           "integration_id": None}  # fmt: skip
BODY_VALUES = {**TEXT, **JSON_RAW}
URL_VALUES = {**TEXT, **URL_RAW}

# (operation, parameter, how it is sent, OpenAPI path template, the values tried)
CASES: list[tuple[str, str, Sender, str, dict[str, Any]]] = [
    *[("oauthStart", p, body("oauth_start", "POST", "/oauth/start", START, p), "/oauth/start", BODY_VALUES)
      for p in ("provider", "scopes.0", "return_to", "label", "integration_id")],
    ("oauthStart", "return_to (under the allowed URL)",
     body("oauth_start", "POST", "/oauth/start", START, "return_to", prefix=APP), "/oauth/start", BODY_VALUES),
    ("oauthStart", "mode", body("oauth_start", "POST", "/oauth/start", START, "mode"), "/oauth/start", BODY_VALUES),
    *[("createConnectSession", p, body("oauth_start", "POST", "/connect/sessions", SESSION, p), "/connect/sessions",
       BODY_VALUES) for p in ("entity_id", "allowed_origin", "allowed_providers.0", "label", "integration_id")],
    ("getConnectFlow", "flow_id", path_segment("oauth_start", "GET", "/connect/flows/{id}"), "/connect/flows/{flow_id}",
     URL_VALUES),
    ("getConnectFlow", "wait", query("oauth_start", "GET", f"/connect/flows/{ID_VALUE}", {}, "wait"),
     "/connect/flows/{flow_id}", URL_VALUES),
    ("connectPage", "session", query("oauth_start", "GET", "/connect", {}, "session"), "/connect", URL_VALUES),
    ("oauthCallback", "state", query("oauth_callback", "GET", "/oauth/callback", {"code": "c"}, "state"),
     "/oauth/callback", URL_VALUES),
    *[("oauthCallback", p, query("oauth_callback", "GET", "/oauth/callback", {}, p, flow=True), "/oauth/callback",
       URL_VALUES) for p in ("code", "iss", "error", "error_description")],
    *[("listIntegrations", p, query("integrations", "GET", "/integrations", {}, p), "/integrations", URL_VALUES)
      for p in ("provider", "status", "page_size", "page_token")],
    *[("createIntegration", p, body("integrations", "POST", "/integrations", CREATE, p), "/integrations",
       BODY_VALUES) for p in ("provider", "credentials.api_key", "credentials.<key>", "label", "config.k",
                              "config.<key>")],
    *[(op, "integration_id", path_segment("integrations", method, template),
       template.replace("{id}", "{integration_id}"), URL_VALUES)
      for op, method, template in [("getIntegration", "GET", ID), ("patchIntegration", "PATCH", ID),
                                   ("deleteIntegration", "DELETE", ID), ("testIntegration", "POST", ID + "/test"),
                                   ("syncIntegration", "POST", ID + "/sync")]],
    *[("patchIntegration", p, body("integrations", "PATCH", ID, PATCH, p), "/integrations/{integration_id}",
       BODY_VALUES) for p in ("label", "config.k", "config.<key>")],
    ("createIntegration", "config.k (a number)", body("integrations", "POST", "/integrations", CREATE, "config.k",
     raw=True), "/integrations", JSON_NUMBERS),
    ("createIntegration", "credentials.api_key (a number)", body("integrations", "POST", "/integrations", CREATE,
     "credentials.api_key", raw=True), "/integrations", JSON_NUMBERS),
    ("patchIntegration", "config.k (a number)", body("integrations", "PATCH", ID, PATCH, "config.k", raw=True),
     "/integrations/{integration_id}", JSON_NUMBERS),
    ("patchIntegration", "status", body("integrations", "PATCH", ID, {"status": "active"}, "status"),
     "/integrations/{integration_id}", BODY_VALUES),
    ("fetchToken", "integration_id", path_segment("token_fetch", "GET", "/token/{id}"),
     "/token/{integration_id}", URL_VALUES),
    *[("fetchToken", p, query("token_fetch", "GET", "/token/{id}", {}, p), "/token/{integration_id}", URL_VALUES)
      for p in ("min_ttl", "force_refresh")],
    ("runRefreshJob", "unknown", query("token_refresh", "POST", "/refresh", {}, "x"), "/refresh", URL_VALUES),
    ("dispatchEvents", "unknown", query("token_refresh", "POST", "/dispatch", {}, "x"), "/dispatch", URL_VALUES),
    ("listEvents", "integration_id", query("token_fetch", "GET", "/events", {}, "integration_id"), "/events",
     URL_VALUES),
    *[("listEvents", p, query("token_fetch", "GET", "/events", {"entity_id": ENTITY}, p), "/events", URL_VALUES)
      for p in ("entity_id", "page_size", "page_token")],
    ("getEvent", "event_id", path_segment("token_fetch", "GET", "/events/{id}"), "/events/{event_id}", URL_VALUES),
    ("replayEvents", "event_ids.0", body("token_fetch", "POST", "/events/replay", {"event_ids": [ID_VALUE]},
     "event_ids.0"), "/events/replay", BODY_VALUES),
    *[("replayEvents", p, body("token_fetch", "POST", "/events/replay", REPLAY, p), "/events/replay", BODY_VALUES)
      for p in ("integration_id", "since", "until")],
    *[(op, "X-Entity-Id", header(function, method, path, "X-Entity-Id"), template, HEADER_RAW)
      for op, function, method, path, template in [
          ("oauthStart", "oauth_start", "POST", "/oauth/start", "/oauth/start"),
          ("getConnectFlow", "oauth_start", "GET", f"/connect/flows/{ID_VALUE}", "/connect/flows/{flow_id}"),
          ("listIntegrations", "integrations", "GET", "/integrations", "/integrations"),
          ("getIntegration", "integrations", "GET", ID, "/integrations/{integration_id}"),
          ("listProviders", "integrations", "GET", "/providers", "/providers")]],
    *[(op, "Authorization", header(function, method, path, "Authorization"), template,
       {k: b"Bearer " + v for k, v in HEADER_RAW.items()})
      for op, function, method, path, template in [
          ("fetchToken", "token_fetch", "GET", "/token/{id}", "/token/{integration_id}"),
          ("createConnectSession", "oauth_start", "POST", "/connect/sessions", "/connect/sessions"),
          ("getConnectFlow", "oauth_start", "GET", f"/connect/flows/{ID_VALUE}", "/connect/flows/{flow_id}"),
          ("oauthStart", "oauth_start", "POST", "/oauth/start", "/oauth/start"),
          ("runRefreshJob", "token_refresh", "POST", "/refresh", "/refresh")]],
]  # fmt: skip


@pytest.mark.parametrize(("operation", "parameter", "send", "template", "values"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])  # fmt: skip
def test_hostile_values_are_refused_cleanly_or_kept_faithfully(stack, operation, parameter, send, template, values):
    problems = []
    for name, value in values.items():
        before = stack.snapshot()
        response = send(stack, value)
        status = response.status_code
        if status >= 500:
            problems.append(f"{name}: {status} {response.text[:200]}")
            continue
        if not parameter.startswith(("X-", "Authorization")):  # the HTTP server may answer bad headers itself
            try:
                assert_conforms(response, response.request.method or "GET", template)
            except AssertionError as exc:
                problems.append(f"{name}: {exc}")
        if status >= 400 and response.headers.get("Content-Type", "").startswith("application/json"):
            code = response.json()["error"]["code"]
            if not code.replace("_", "").isalnum():
                problems.append(f"{name}: error code {code!r}")
        if status >= 400 and operation != "oauthCallback" and stack.snapshot() != before:
            problems.append(f"{name}: refused with {status} but something was stored")
    assert problems == [], f"{operation} {parameter}"


def test_every_listing_afterwards_is_strict_json(stack):
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in an answer")

    response = requests.get(stack.url("integrations", "/integrations"), headers={"X-Entity-Id": ENTITY}, timeout=10)
    assert response.status_code == 200
    listed = json.loads(response.text, parse_constant=refuse)
    assert stack.victim in [i["id"] for i in listed["integrations"]]
