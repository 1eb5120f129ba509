"""The OpenAPI 3.1 document at `GET /openapi.json`, generated from the contracts the route modules declare
(`contract.api_route`): their query, body and answer models are the ones the handlers validate with, so the
document cannot drift from the code. A route without a contract fails the document's test, not a user."""

import importlib.metadata
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from gateway.web.contract import ApiRoute, Contract, ErrorBody, api_route

_ERRORS = {
    400: "`invalid_json`: the body is not JSON, not an object, or nested too deep.",
    401: "`unauthorized`: a missing or wrong key (a webhook: its signature matches no secret of the source).",
    403: "`forbidden`: this client may not use the route.",
    404: "`not_found`: no such resource, route or source.",
    405: "`method_not_allowed`.",
    408: "`request_timeout`: the body did not arrive in time.",
    409: "`conflict`: the resource is not in a state that allows this.",
    413: "`payload_too_large`: the body is over `max_body_bytes`.",
    422: "`validation_error`: one `details` entry per problem, with its dotted field path.",
    500: "`internal_error`: unexpected; logged with a traceback, never the payload.",
    503: "`unavailable`: the database cannot take the request now; retry after `Retry-After` seconds.",
}
_ALWAYS = (500, 503)
_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "bearer": [{"apiKey": []}],
    "metrics": [{"metricsToken": []}],
    "webhook": [],
    "none": [],
}


def _path(route: ApiRoute) -> str:
    """Starlette's `{name:converter}` as OpenAPI's `{name}`."""
    path = route.path
    for name in route.param_convertors:
        path = path.replace(f"{{{name}:path}}", f"{{{name}}}")
    return path


def _models(contracts: Iterable[Contract]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    found: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(ErrorBody, "serialization"): None}
    for contract in contracts:
        for model in (contract.query, contract.body):
            if model is not None:
                found[(model, "validation")] = None
        for answer in contract.answers.values():
            if answer is not None:
                found[(answer, "serialization")] = None
    return list(found)


def _parameters(route: ApiRoute, query_schema: dict[str, Any] | None) -> list[dict[str, Any]]:
    contract = route.contract
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
            "description": contract.path_params.get(name, ""),
        }
        for name in route.param_convertors
    ]
    if query_schema is not None:
        required = set(query_schema.get("required", []))
        for name, schema in query_schema.get("properties", {}).items():
            parameter = {"name": name, "in": "query", "required": name in required, "schema": schema}
            if "description" in schema:
                parameter["description"] = schema["description"]
            parameters.append(parameter)
    return parameters


def _responses(contract: Contract, refs: dict[Any, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, model in contract.answers.items():
        if model is not None:
            schema = refs[(model, "serialization")]
        else:
            schema = {"type": "object"} if contract.media == "application/json" else {"type": "string"}
        responses[str(status)] = {"description": contract.summary, "content": {contract.media: {"schema": schema}}}
    for status in sorted({*contract.errors, *_ALWAYS}):
        response: dict[str, Any] = {
            "description": _ERRORS[status],
            "content": {"application/json": {"schema": refs[(ErrorBody, "serialization")]}},
        }
        if status == 503:
            response["headers"] = {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds."}}
        responses[str(status)] = response
    return responses


def _operation(route: ApiRoute, refs: dict[Any, Any], defs: dict[str, Any]) -> dict[str, Any]:
    contract = route.contract
    query_schema = None
    if contract.query is not None:
        reference = refs[(contract.query, "validation")]["$ref"].rsplit("/", 1)[-1]
        query_schema = defs[reference]
    operation: dict[str, Any] = {
        "operationId": route.name,
        "summary": contract.summary,
        "tags": [contract.tag],
        "security": _SECURITY[contract.auth],
        "parameters": _parameters(route, query_schema),
        "responses": _responses(contract, refs),
    }
    if contract.description:
        operation["description"] = contract.description
    if contract.body is not None:
        body_schema = refs[(contract.body, "validation")]
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body_schema}}}
    elif contract.raw_body is not None:
        operation["requestBody"] = {
            "required": True,
            "description": contract.raw_body,
            "content": {"application/json": {"schema": {}}, "application/x-www-form-urlencoded": {"schema": {}}},
        }
    return operation


def document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route that declares a contract."""
    api_routes = [route for route in routes if isinstance(route, ApiRoute)]
    refs, top = models_json_schema(
        _models(route.contract for route in api_routes), ref_template="#/components/schemas/{model}"
    )
    defs = top.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for route in api_routes:
        paths.setdefault(_path(route), {})[route.method.lower()] = _operation(route, refs, defs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "commerce-gateway",
            "version": _version(),
            "description": "Push Order API, webhook intake, read API and operator endpoints (docs/api.md).",
        },
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "A key of `api_keys`."},
                "metricsToken": {"type": "http", "scheme": "bearer", "description": "The `metrics_token`."},
            },
        },
    }


def _version() -> str:
    try:
        return importlib.metadata.version("commerce-gateway")
    except importlib.metadata.PackageNotFoundError:
        return "0"


async def openapi_json(request: Request) -> Response:
    app = request.app
    if getattr(app.state, "openapi", None) is None:
        app.state.openapi = document(app.routes)
    return JSONResponse(app.state.openapi)


ROUTES = [
    api_route(
        "/openapi.json",
        openapi_json,
        "GET",
        Contract("This OpenAPI document", "operations", {200: None}, auth="none", media="application/json"),
    )
]
