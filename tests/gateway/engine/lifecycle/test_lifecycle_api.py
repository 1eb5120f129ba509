"""The lifecycle endpoints validate like the Push Order API: 401 without a key, 400 for what is not a JSON
object, 422 with one detail per problem and its field path, 413 over the body limit; and the catalog keeps what
a partial update leaves out."""

from typing import Any

import pytest

from tests.conftest import Harness
from tests.gateway.engine.lifecycle._support import PROTEIN, post_products

ENDPOINTS = ["/api/v1/products", "/api/v1/back-in-stock", "/api/v1/checkouts"]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_without_a_key_401(harness: Harness, path: str) -> None:
    response = harness.client.post(path, json={}, headers={"Authorization": "Bearer wrong-key-0123456789"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]"])
def test_not_a_json_object_400(harness: Harness, path: str, body: bytes) -> None:
    response = harness.client.post(path, content=body, headers=harness.headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_over_the_limit_413(make_harness: Any, path: str) -> None:
    harness = make_harness(max_body_bytes=2048)
    response = harness.client.post(path, content=b"{" + b" " * 4096 + b"}", headers=harness.headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("path", "body", "fields"),
    [
        ("/api/v1/products", {"products": []}, ["products"]),
        (
            "/api/v1/products",
            {
                "products": [
                    {"productId": "", "priceCents": "12"},
                    {
                        "productId": "p2",
                        "variants": [{"title": "no id", "inventoryQuantity": 1.5}],
                        "replenishment": {"days": 0, "leadDays": -1, "matchBy": "sku"},
                        "colour": "red",
                    },
                ]
            },
            [
                "products.0.productId",
                "products.0.priceCents",
                "products.1.variants.0.variantId",
                "products.1.variants.0.inventoryQuantity",
                "products.1.replenishment.days",
                "products.1.replenishment.leadDays",
                "products.1.replenishment.matchBy",
                "products.1.colour",
            ],
        ),
        ("/api/v1/back-in-stock", {"variantId": "v", "customer": {"email": "nope"}}, ["productId", "customer.email"]),
        (
            "/api/v1/checkouts",
            {"totalCents": -1, "currency": "XXY", "customer": {}, "items": [{"productId": "p", "quantity": 0}]},
            [
                "checkoutId",
                "totalCents",
                "currency",
                "customer.email",
                "items.0.title",
                "items.0.quantity",
            ],
        ),
    ],
)
def test_each_problem_has_its_field_path_422(harness: Harness, path: str, body: Any, fields: list[str]) -> None:
    response = harness.client.post(path, json=body, headers=harness.headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert sorted(detail["field"] for detail in error["details"]) == sorted(fields)
    with harness.db() as conn:  # nothing half-accepted
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM products").fetchone()[0] == 0


def test_a_field_left_out_is_kept_and_null_clears_it(harness: Harness) -> None:
    post_products(
        harness,
        {
            "productId": PROTEIN,
            "title": "Protein Powder",
            "priceCents": 4425,
            "currency": "usd",
            "variants": [{"variantId": "V", "title": "Vanilla", "inventoryQuantity": 3}],
            "replenishment": {"days": 30, "leadDays": 5},
        },
    )
    post_products(
        harness, {"productId": PROTEIN, "priceCents": None, "variants": [{"variantId": "V", "inStock": False}]}
    )
    response = harness.get(f"/api/v1/products/{PROTEIN}")
    assert response.status_code == 200
    assert response.json() == {
        "productId": PROTEIN,
        "title": "Protein Powder",
        "currency": "USD",
        "variants": [{"variantId": "V", "title": "Vanilla", "inventoryQuantity": 3, "inStock": False}],
        "replenishment": {"days": 30, "leadDays": 5, "matchBy": "product"},
    }
    post_products(harness, {"productId": PROTEIN, "replenishment": None})
    assert harness.get(f"/api/v1/products/{PROTEIN}").json()["replenishment"] is None
    assert harness.get("/api/v1/products/unknown").status_code == 404
    assert harness.get("/api/v1/subscribers/nobody@example.com/automations").status_code == 404
