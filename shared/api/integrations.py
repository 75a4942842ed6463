"""The integrations function's endpoints: each parses, calls one use case, and answers its view."""

from __future__ import annotations

import flask
from werkzeug.wrappers import Response as BaseResponse

from shared.api.router import Endpoint, integration_id
from shared.api.views import check_view, integration_view, page_view, provider_view, removal_view
from shared.bootstrap import Container
from shared.http import json_response, parse_json, parse_query
from shared.schemas import CreateIntegrationBody, ListIntegrationsQuery, PatchIntegrationBody


def list_integrations(request: flask.Request, app: Container, entity: str, _: dict[str, str]) -> BaseResponse:
    query = _query(request)
    return json_response(page_view(app.integration_service.list(entity, query.to_request())))


def create_integration(request: flask.Request, app: Container, entity: str, _: dict[str, str]) -> BaseResponse:
    body = parse_json(request, CreateIntegrationBody)
    created = app.integration_service.create(entity, body.to_request())
    return json_response(integration_view(created), 201, {"Location": f"/integrations/{created.id}"})


def get_integration(request: flask.Request, app: Container, entity: str, params: dict[str, str]) -> BaseResponse:
    return json_response(integration_view(app.integration_service.get(entity, integration_id(params))))


def patch_integration(request: flask.Request, app: Container, entity: str, params: dict[str, str]) -> BaseResponse:
    target = integration_id(params)
    patch = parse_json(request, PatchIntegrationBody).to_request()
    return json_response(integration_view(app.integration_service.update(entity, target, patch)))


def delete_integration(request: flask.Request, app: Container, entity: str, params: dict[str, str]) -> BaseResponse:
    return json_response(removal_view(app.integration_service.remove(entity, integration_id(params))))


def check_integration(request: flask.Request, app: Container, entity: str, params: dict[str, str]) -> BaseResponse:
    return json_response(check_view(app.integration_service.check(entity, integration_id(params))))


def sync_integration(request: flask.Request, app: Container, entity: str, params: dict[str, str]) -> BaseResponse:
    return json_response(integration_view(app.integration_service.sync(entity, integration_id(params))), 202)


def list_providers(request: flask.Request, app: Container, entity: str, _: dict[str, str]) -> BaseResponse:
    return json_response({"providers": [provider_view(info) for info in app.integration_service.providers()]})


def _query(request: flask.Request) -> ListIntegrationsQuery:
    return parse_query(request, ListIntegrationsQuery)


ENDPOINTS = (
    Endpoint("GET", "/integrations", list_integrations),
    Endpoint("POST", "/integrations", create_integration),
    Endpoint("GET", "/integrations/{integration_id}", get_integration),
    Endpoint("PATCH", "/integrations/{integration_id}", patch_integration),
    Endpoint("DELETE", "/integrations/{integration_id}", delete_integration),
    Endpoint("POST", "/integrations/{integration_id}/test", check_integration),
    Endpoint("POST", "/integrations/{integration_id}/sync", sync_integration),
    Endpoint("GET", "/providers", list_providers),
)
