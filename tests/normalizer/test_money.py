"""Money (STYLE rule 4): decimal strings to integer minor units by the ISO 4217 exponent, never through a float."""

from decimal import Decimal

import pytest

from normalizer.money import MoneyError, convert, exponent, normalise_currency, to_major, to_minor


@pytest.mark.parametrize(
    ("amount", "currency", "cents"),
    [
        ("88.50", "USD", 8850),
        ("88.5", "usd", 8850),
        ("0.10", "EUR", 10),
        ("1500", "JPY", 1500),
        ("1500.00", "JPY", 1500),  # a store's decimals setting is not the exponent
        ("1.5", "KWD", 1500),
        ("12.345", "BHD", 12345),
        ("4500", "KRW", 4500),
        (" 7.25 ", "GBP", 725),
        (12, "USD", 1200),
        (Decimal("19.99"), "USD", 1999),
        ("0", "USD", 0),
        ("-10.00", "USD", -1000),  # WooCommerce refunds are negative strings; callers decide what a sign means
        ("9999999999999.99", "USD", 999999999999999),  # past 2**53 / 100: exact, no float on the way
        ("10000000000000.00", "USD", 10**15),  # the limit itself
        ("-10000000000000", "USD", -(10**15)),
        ("1000000000000.000", "KWD", 10**15),
    ],
)
def test_to_minor(amount: str, currency: str, cents: int) -> None:
    assert to_minor(amount, currency) == cents


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        (88.5, "USD", "not a float"),
        (True, "USD", "not a float"),
        ("88.505", "USD", "more decimals than USD allows"),
        ("1500.5", "JPY", "more decimals than JPY allows"),
        ("eighty", "USD", "not a decimal number"),
        ("NaN", "USD", "not a finite number"),
        ("1.00", "ZZZ", "not an ISO 4217 currency code"),
        ("1.00", "XAU", "has no minor unit"),
        ("10000000000000.01", "USD", "over the limit of 1,000,000,000,000,000 minor units"),
        ("-10000000000000.01", "USD", "over the limit"),
        ("1000000000000.001", "KWD", "over the limit"),
        ("1000000000000001", "JPY", "over the limit"),
        ("92233720368547758.07", "USD", "over the limit"),
        ("1e999999999", "USD", "over the limit"),  # refused before it overflows or becomes a huge integer
    ],
)
def test_to_minor_refuses(amount: object, currency: str, message: str) -> None:
    with pytest.raises(MoneyError, match=message):
        to_minor(amount, currency)  # type: ignore[arg-type]


def test_exponents_and_codes() -> None:
    assert [exponent(c) for c in ("USD", "JPY", "KWD", "CLP", "VND", "OMR", "TND")] == [2, 0, 3, 0, 0, 3, 3]
    assert normalise_currency(" eur ") == "EUR"


def test_to_major_and_convert() -> None:
    assert to_major(8850, "USD") == 88.5
    assert to_major(1500, "JPY") == 1500
    assert to_major(1234, "KWD") == 1.234
    rates = {"EUR": Decimal("1.08"), "JPY": Decimal("0.0067")}
    assert convert(10000, "EUR", "USD", rates) == 10800
    assert convert(15000, "JPY", "USD", rates) == 10050  # 15000 x 0.0067 = 100.50
    assert convert(5, "EUR", "USD", rates) == 5  # 0.054 -> 0.05 (half-even to the cent)
    assert convert(500, "GBP", "USD", rates) is None
    assert convert(500, "USD", "USD", rates) == 500
