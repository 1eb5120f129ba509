"""Money: ISO 4217 codes and exponents, decimal strings to integer minor units, conversion to the base currency."""

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import cache

from iso4217 import Currency

from normalizer.problems import InputProblem

# The largest amount, in minor units, an order, a refund or an item may state (ten trillion dollars). Bounded
# so that money stays exact everywhere it goes: each amount fits SQLite's 64-bit integers with room to spare,
# and sums of them are added without overflow (store.ledger).
MAX_MINOR_UNITS = 10**15


class MoneyError(InputProblem):
    pass


@cache
def exponent(code: str) -> int:
    """Minor-unit exponent of an ISO 4217 code (JPY 0, USD 2, KWD 3); codes without minor units are refused."""
    try:
        value = Currency(code.upper()).exponent
    except ValueError:
        raise MoneyError("not an ISO 4217 currency code") from None
    if value is None:
        raise MoneyError("a code that has no minor unit (not a currency orders can be paid in)")
    return int(value)


def normalise_currency(code: str) -> str:
    code = code.strip().upper()
    exponent(code)
    return code


def to_minor(amount: str | int | Decimal, currency: str) -> int:
    """A decimal amount in major units ("88.50", 88) as integer minor units of `currency`.

    The string's own number of decimals is not the exponent: "1500" JPY is 1500, "1.5" KWD is 1500.
    Floats are refused: they cannot carry an exact amount.
    """
    if isinstance(amount, bool | float):
        raise MoneyError("must be a decimal string or an integer, not a float")
    try:
        value = Decimal(amount.strip() if isinstance(amount, str) else amount)
    except InvalidOperation:
        raise MoneyError("not a decimal number") from None
    if not value.is_finite():
        raise MoneyError("not a finite number")
    # Checked before scaling and int(): "1e999999999" would overflow the decimal context, or build an integer
    # of a billion digits. (The amount itself bounds the scaled one from below: exponents are >= 0.)
    magnitude = value.copy_abs()  # exact, where abs() rounds to the context and can overflow
    if magnitude > MAX_MINOR_UNITS or magnitude.scaleb(exponent(currency)) > MAX_MINOR_UNITS:
        raise MoneyError(f"amount is over the limit of {MAX_MINOR_UNITS:,} minor units")
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"more decimals than {currency.upper()} allows")
    return int(scaled)


def to_major(cents: int, currency: str) -> float:
    """Minor units as a JSON-friendly number of major units (8850 USD -> 88.5)."""
    return float(Decimal(cents).scaleb(-exponent(currency)))


def convert(cents: int, currency: str, base: str, fx_rates: dict[str, Decimal]) -> int | None:
    """`cents` of `currency` in minor units of `base`, rounded half-even; None when no rate is configured."""
    if currency == base:
        return cents
    rate = fx_rates.get(currency)
    if rate is None:
        return None
    major = Decimal(cents).scaleb(-exponent(currency)) * rate
    return int(major.scaleb(exponent(base)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
