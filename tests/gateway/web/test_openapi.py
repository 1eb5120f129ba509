"""`GET /openapi.json`: generated from the routes' own models, it describes every route of the app, and the live
app answers as it says: schemathesis fuzzes each operation from the document, with the API key, and every answer
is documented, of the documented type and shape, and never a 5xx."""

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.web.app import ROUTES
from gateway.web.contract import ApiRoute
from gateway.web.openapi import document
from tests.conftest import API_KEY, Harness, order, write_config
from tests.gateway._server import Server

EXAMPLES = 12  # per operation: bounded, so the whole fuzz stays well under a minute
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_every_route_declares_its_contract() -> None:
    # Every route of the API declares its contract; the operator page's HTML routes stay out of the document.
    undeclared = [
        route.path  # type: ignore[attr-defined]
        for route in ROUTES
        if not isinstance(route, ApiRoute) and route.include_in_schema  # type: ignore[attr-defined]
    ]
    assert undeclared == []
    assert not any(path.startswith("/admin") for path in document(ROUTES)["paths"])
    paths = document(ROUTES)["paths"]
    declared = {
        (route.path.replace(":path", ""), route.method.lower()) for route in ROUTES if isinstance(route, ApiRoute)
    }
    assert {(path, method) for path, methods in paths.items() for method in methods} == declared


def test_the_document_is_served_and_names_the_contract(harness: Harness) -> None:
    response = harness.client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"] == "3.1.0"
    push = spec["paths"]["/api/v1/orders"]["post"]
    body = push["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(spec["components"]["schemas"][body]["required"]) == {"orderId", "totalCents", "currency", "customer"}
    assert set(push["responses"]) >= {"202", "400", "401", "413", "422", "503"}
    error = push["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert spec["components"]["schemas"][error]["properties"]["success"]["const"] is False
    jobs = spec["paths"]["/api/v1/jobs"]["get"]
    assert [p["name"] for p in jobs["parameters"]] == ["status", "source", "limit", "cursor"]
    assert jobs["security"] == [{"apiKey": []}] and spec["paths"]["/healthz"]["get"]["security"] == []


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder: Path = tmp_path_factory.mktemp("openapi")
    config = write_config(folder, sources={"shop": {"type": "shopify", "secrets": ["shpss_0123456789abcdef"]}})
    with Server(config) as server, server.client() as client:
        # Something to find: an order, its subscriber and events, a done job.
        accepted = client.post("/api/v1/orders", json=order("order-1001")).json()
        yield server, accepted


def test_the_live_app_answers_as_its_document_says(live: Any) -> None:
    server, accepted = live
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    expected = {(path, method) for path, methods in document(ROUTES)["paths"].items() for method in methods}
    # Every operation but the document itself (schemathesis leaves out the address it loaded the schema from).
    assert {(op.path, op.method.lower()) for op in operations} == expected - {("/openapi.json", "get")}
    called = {f"{op.method.upper()} {op.path}": _fuzz(op, server.url) for op in operations}
    assert all(count >= 1 for count in called.values()), called
    assert accepted["success"] is True


def _fuzz(operation: Any, base_url: str) -> int:
    """Up to EXAMPLES generated requests to one operation, each checked; returns how many were sent."""
    sent = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def fuzz(case: Any) -> None:
        nonlocal sent
        case.call_and_validate(base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}, checks=CHECKS)
        sent += 1

    fuzz()
    return sent


def test_every_route_with_a_body_documents_its_body_limits() -> None:
    # Every body is read under `max_body_bytes` (413) and `body_read_timeout` (408).
    for path, methods in document(ROUTES)["paths"].items():
        for method, operation in methods.items():
            if "requestBody" in operation:
                assert {"400", "408", "413"} <= set(operation["responses"]), (method, path)


def test_answer_schemas_allow_fields_a_later_version_adds() -> None:
    # docs/api.md: "Answer schemas list every field and allow others". A schema closed with
    # `additionalProperties: false` makes a client generated from it refuse the next release's answers.
    spec = document(ROUTES)
    schemas = spec["components"]["schemas"]
    seen: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.rsplit("/", 1)[-1] not in seen:
                seen.add(ref.rsplit("/", 1)[-1])
                walk(schemas[ref.rsplit("/", 1)[-1]])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    for methods in spec["paths"].values():
        for operation in methods.values():
            walk(operation["responses"])
    closed = sorted(name for name in seen if schemas[name].get("additionalProperties") is False)
    assert closed == []
    subscriber = schemas["Subscriber"]
    assert "segments" in subscriber["properties"] and "segments" in subscriber["required"]
