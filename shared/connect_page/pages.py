"""Rendering the broker's own pages (Jinja2, autoescaped) with their security headers: a strict CSP, the
framing rule, no referrer, no caching."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import flask
import jinja2
from markupsafe import escape
from werkzeug.wrappers import Response as BaseResponse

from shared.domain.models import ConnectSession, Integration
from shared.services.connect_endings import Ending
from shared.services.integrations import ProviderInfo

STATUS_TEXT = {
    "active": "Connected", "pending": "Pending", "inactive": "Paused", "expired": "Expired",
    "reauth_required": "Needs reconnecting", "error": "Error", "revoked": "Revoked",
}  # fmt: skip


@cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("shared.connect_page", "templates"), autoescape=True, auto_reload=False
    )


@cache
def asset(name: str) -> bytes:
    return resources.files("shared.connect_page").joinpath("assets", name).read_bytes()


@cache
def _result_script() -> tuple[str, str]:
    script = asset("result.js").decode()
    return script, "sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()


def page_headers(response: flask.Response, csp: str) -> flask.Response:
    response.headers["Content-Security-Policy"] = csp
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Explicitly not `same-origin`: the popup must keep its opener to post the result to it.
    response.headers["Cross-Origin-Opener-Policy"] = "unsafe-none"
    return response


def connect_csp(frame_origin: str) -> str:
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; connect-src 'self'; "
        f"form-action 'self'; base-uri 'none'; frame-ancestors {frame_origin}"
    )


def render(template: str, status: int, csp: str, **context: Any) -> flask.Response:
    html = _templates().get_template(template).render(**context)
    return page_headers(flask.Response(html, status, mimetype="text/html"), csp)


def message_page(base: str, status: int, title: str, text: str, *, tone: str = "error") -> flask.Response:
    """A page that only says something (an expired or invalid link): no script, framed by nobody."""
    csp = "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    return render("message.html", status, csp, base=base, title=title, text=text, tone=tone, detail=None)


RESULT_WORDS = {
    "access_denied": ("Connection cancelled", "You did not allow access, so nothing was connected."),
    "temporarily_unavailable": ("The service is unavailable", "It cannot be reached right now: try again soon."),
    "provider_error": ("The service refused", "It could not complete the connection: try again."),
    "server_error": ("Something went wrong", "The connection could not be saved; nothing was stored."),
}


def result_page(base: str, message: dict[str, str], origin: str) -> flask.Response:
    """The popup's last page: it posts `message` to the opener at exactly `origin`, then closes itself."""
    script, digest = _result_script()
    if message["status"] == "connected":
        title, text, tone = "Connected", "The account is connected. You can close this window.", "ok"
    else:
        title, text = RESULT_WORDS.get(message.get("error", ""), ("Not connected", "The connection failed."))
        tone = "error"
    csp = (
        f"default-src 'none'; script-src '{digest}'; style-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    result = {"message": message, "origin": origin, "base": base}
    detail = message.get("error_description") if tone == "error" else None
    return render("message.html", 200, csp, base=base, title=title, text=text, tone=tone, detail=detail,
                  result=result, script=script)  # fmt: skip


REFUSED_PAGE = "<!doctype html><title>Connection failed</title><h1>Connection failed</h1><p>{}</p>"


def refused_page(message: str, code: str) -> flask.Response:
    """The callback's plain 400 for a state that does not hold (unknown, used, expired, another browser)."""
    page = flask.Response(REFUSED_PAGE.format(escape(message)), 400, mimetype="text/html")
    page.headers["X-Error-Code"] = code
    return page


def ending_response(base: str, ending: Ending) -> BaseResponse:
    if ending.message is not None and ending.origin is not None:
        return result_page(base, ending.message, ending.origin)
    return flask.redirect(ending.location, 302)


@dataclass(frozen=True)
class Field:
    name: str
    title: str
    required: bool
    secret: bool
    pattern: str | None
    min_length: int | None
    max_length: int | None
    description: str | None


def credential_fields(info: ProviderInfo) -> list[Field]:
    """The form of a static-credential provider, from its catalog `credentials_schema`."""
    schema = info.provider.credentials_schema or {}
    required = set(schema.get("required", []))
    fields = []
    for name, spec in (schema.get("properties") or {}).items():
        pattern = spec.get("pattern")
        if isinstance(pattern, str):  # HTML patterns are anchored already
            pattern = pattern.removeprefix("^").removesuffix("$")
        fields.append(Field(
            name, str(spec.get("title") or name), name in required, bool(spec.get("writeOnly")),
            pattern if isinstance(pattern, str) else None, spec.get("minLength"), spec.get("maxLength"),
            spec.get("description"),
        ))  # fmt: skip
    return fields


def connect_page(
    base: str, session: ConnectSession, infos: list[ProviderInfo], integrations: list[Integration], now: datetime
) -> flask.Response:
    by_id = {info.provider.id: info.provider for info in infos}
    items = [
        {
            "id": str(i.id), "provider": by_id[i.provider], "status": i.status.value,
            "status_text": STATUS_TEXT.get(i.status.value, i.status.value),
            "account": i.account_email or i.account_login or i.label, "oauth": i.credential_type.value == "oauth2",
        }
        for i in integrations
        if i.provider in by_id
    ]  # fmt: skip
    # Offered: the configured providers; one the session names explicitly is shown even when it is not (as
    # unavailable), so the entity sees why it cannot connect it.
    offered = [i for i in infos if session.permits(i.provider.id) and (i.configured or session.allowed_providers)]
    if session.integration_id is not None:  # a reconnect session: only that integration's provider
        offered = []
    providers = [{"provider": info.provider, "configured": info.configured, "fields": credential_fields(info)}
                 for info in offered]  # fmt: skip
    minutes = max(1, int((session.expires_at - now).total_seconds() // 60))
    config = {"base": base, "origin": session.allowed_origin}
    return render(
        "connect.html", 200, connect_csp(session.allowed_origin), base=base, integrations=items, providers=providers,
        reconnect_only=session.integration_id is not None, expires_in=f"in {minutes} minute{'s' * (minutes != 1)}",
        config=config,
    )  # fmt: skip
