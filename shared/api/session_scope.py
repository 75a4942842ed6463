"""What a connect session may do on the integrations API: what the Connect page and the JS SDK need (list, read,
disconnect, store static credentials for a provider the session offers), nothing else."""

from __future__ import annotations

import flask

from shared.adapters.session_auth import Caller
from shared.errors import SessionNotPermitted
from shared.http import parse_json
from shared.providers.catalog import Catalog
from shared.schemas import CreateIntegrationBody

SESSION_OPERATIONS = {
    ("GET", "/integrations"), ("GET", "/integrations/{integration_id}"), ("DELETE", "/integrations/{integration_id}"),
    ("POST", "/integrations"), ("GET", "/providers"),
}  # fmt: skip


def check_session_scope(caller: Caller, method: str, path: str, request: flask.Request, catalog: Catalog) -> None:
    session = caller.session
    if session is None:
        return
    if (method, path) not in SESSION_OPERATIONS:
        raise SessionNotPermitted("a connect session cannot do this: use the entity's own credentials")
    if (method, path) == ("POST", "/integrations"):
        provider = parse_json(request, CreateIntegrationBody).provider  # the body is cached for the handler
        provider = catalog.get(provider).id if provider in catalog else provider
        if session.integration_id is not None or not session.permits(provider):
            raise SessionNotPermitted(f"this connect session does not offer provider {provider[:64]!r}")
