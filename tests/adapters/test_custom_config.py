"""A custom source's config is checked at start: `commerce-gateway check-config` (and so `serve`) fails with one
message naming the source and the key. The messages below are exactly what a merchant sees."""

import copy
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from tests.conftest import write_config

SOURCE: dict[str, Any] = {
    "type": "custom",
    "secrets": ["s3cret-s3cret"],
    "signature": {"scheme": "hmac", "header": "X-Signature"},
    "mapping": {
        "orderId": "data.id",
        "totalCents": "data.total",
        "currency": "data.currency",
        "customer": {"email": "data.email"},
    },
}


def _with(path: str, value: Any) -> dict[str, Any]:
    source = copy.deepcopy(SOURCE)
    *parents, last = path.split(".")
    node = source
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return source


_DELETE = object()
PREFIX = "commerce-gateway: config error: "


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param(
            _with("mapping.orderId", "data.["),
            "sources.shop.mapping.orderId: JMESPath expression 'data.[' does not compile: Invalid jmespath"
            " expression: Incomplete expression",
            id="expression does not compile",
        ),
        pytest.param(
            _with("mapping.totalCents", "data.total data.tax"),
            "sources.shop.mapping.totalCents: JMESPath expression 'data.total data.tax' does not compile:"
            ' Unexpected token: data: Parse error at column 11, token "data" (UNQUOTED_IDENTIFIER)',
            id="two expressions without an operator",
        ),
        pytest.param(
            _with("mapping.totalCents", "total_of(data)"),
            "sources.shop.mapping.totalCents: JMESPath expression 'total_of(data)': unknown function total_of()",
            id="unknown function",
        ),
        pytest.param(
            _with("mapping.totalCents", "to_number(data.total, data.currency)"),
            "sources.shop.mapping.totalCents: JMESPath expression 'to_number(data.total, data.currency)':"
            " to_number() takes 1 argument(s), not 2",
            id="wrong number of arguments",
        ),
        pytest.param(
            _with("mapping.customer.emial", "data.email"),
            "sources.shop.mapping.customer: unknown canonical field 'emial' (expected one of: email, externalId,"
            " firstName, lastName, attributes)",
            id="unknown canonical field",
        ),
        pytest.param(
            _with("mapping.total", "data.total"),
            "sources.shop.mapping: unknown canonical field 'total' (expected one of: orders, money, orderId,"
            " orderNumber, status, totalCents, currency, orderedAt, updatedAt, customer, items, refundAmountCents,"
            " customerTotals, properties)",
            id="unknown top-level canonical field",
        ),
        pytest.param(
            _with("mapping.currency", _DELETE),
            "sources.shop.mapping: canonical field 'currency' is required",
            id="missing required canonical field",
        ),
        pytest.param(
            _with("mapping.customer", {"firstName": "data.name"}),
            "sources.shop.mapping.customer: canonical field 'email' is required",
            id="missing customer email",
        ),
        pytest.param(
            _with("mapping.items", {"each": "data.lines", "productId": "id", "title": "name"}),
            "sources.shop.mapping.items: canonical field 'quantity' is required",
            id="missing item field",
        ),
        pytest.param(
            _with("mapping.status", {"expression": "data.state", "values": {"paid": "shipped"}}),
            "sources.shop.mapping.status.values.paid: Input should be 'placed', 'cancelled', 'fulfilled' or 'refunded'",
            id="status mapped to a non-canonical status",
        ),
        pytest.param(
            _with("mapping.money", "cents"),
            "sources.shop.mapping.money: Input should be 'minor' or 'decimal'",
            id="unknown money format",
        ),
        pytest.param(
            _with("mapping", _DELETE),
            "sources.shop: key 'mapping' is required for type custom",
            id="no mapping",
        ),
        pytest.param(
            _with("signature", {"scheme": "md5"}),
            "sources.shop.signature: Input tag 'md5' found using 'scheme' does not match any of the expected tags:"
            " 'hmac', 'parts', 'stripe', 'standard-webhooks', 'none'",
            id="unknown scheme",
        ),
        pytest.param(
            _with("signature", {"scheme": "hmac"}),
            "sources.shop.signature.hmac: key 'header' is required",
            id="hmac without header",
        ),
        pytest.param(
            _with("signature.algorithm", "md5"),
            "sources.shop.signature.hmac.algorithm: Input should be 'sha256', 'sha1' or 'sha512'",
            id="unknown algorithm",
        ),
        pytest.param(
            _with("signature.signed_payload", "{timestamp}.{body}"),
            "sources.shop.signature.hmac: signed_payload uses {timestamp}: set timestamp_header too",
            id="template timestamp without header",
        ),
        pytest.param(
            _with("signature.signed_payload", "{id}.{body}"),
            "sources.shop.signature.hmac: signed_payload knows only the placeholders {timestamp} and {body}",
            id="template unknown placeholder",
        ),
        pytest.param(
            _with("signature.signed_payload", "{timestamp}"),
            "sources.shop.signature.hmac: signed_payload must contain {body} exactly once",
            id="template without body",
        ),
        pytest.param(
            _with("signature", {"scheme": "parts", "header": "Paddle-Signature", "signature_part": "t"}),
            "sources.shop.signature.parts: timestamp_part and signature_part must differ",
            id="parts with one name for both parts",
        ),
        pytest.param(
            _with("signature", {"scheme": "parts", "header": "P-Sig", "signed_payload": "{timestamp}"}),
            "sources.shop.signature.parts: signed_payload must contain {body} exactly once",
            id="parts template without body",
        ),
        pytest.param(
            _with("signature", {"scheme": "stripe", "timestamp_unit": "us"}),
            "sources.shop.signature.stripe.timestamp_unit: Input should be 's' or 'ms'",
            id="unknown timestamp unit",
        ),
        pytest.param(
            _with("signature", {"scheme": "parts", "header": "P-Sig", "timestamp": "ts"}),
            "sources.shop.signature.parts: unknown key 'timestamp' (expected one of: scheme, header, separator,"
            " timestamp_part, signature_part, signed_payload, algorithm, encoding, timestamp_unit, tolerance_seconds)",
            id="parts unknown key",
        ),
        pytest.param(
            _with("signature", {"scheme": "none"}),
            "sources.shop.signature.none: scheme none accepts anyone who knows the URL: set allow_unsigned: true"
            " to mean it",
            id="none without allow_unsigned",
        ),
        pytest.param(
            _with("secrets", []),
            "sources.shop: secrets: at least one secret is required for signature scheme 'hmac'",
            id="no secret",
        ),
        pytest.param(
            _with("signature", {"scheme": "standard-webhooks"}) | {"secrets": ["whsec_not*base64"]},
            "sources.shop: secrets[0]: not a Standard Webhooks secret (whsec_ followed by base64)",
            id="standard webhooks secret not base64",
        ),
        pytest.param(
            _with("topic", {"header": "X-Topic", "expression": "type", "handled": ["paid"]}),
            "sources.shop.topic: give exactly one of header or expression",
            id="topic both header and expression",
        ),
        pytest.param(
            _with("topic", {"expression": "type"}),
            "sources.shop.topic: key 'handled' is required",
            id="topic without handled values",
        ),
        pytest.param(
            _with("delivery_key", {"expression": "id ||"}),
            "sources.shop.delivery_key.expression: JMESPath expression 'id ||' does not compile: Invalid jmespath"
            " expression: Incomplete expression",
            id="delivery key expression does not compile",
        ),
    ],
)
def test_check_config_names_source_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: dict[str, Any], message: str
) -> None:
    path = write_config(tmp_path, sources={"shop": source})
    assert main(["--config", str(path), "check-config"]) == 2
    assert capsys.readouterr().err == PREFIX + message + "\n"


def test_valid_custom_source_passes_check_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.config import build_adapters, load

    config = load(write_config(tmp_path, sources={"shop": SOURCE}))
    assert list(build_adapters(config)) == ["shop"]
