"""Email addresses: trimmed, lower-cased, syntax-checked and in the email library's normalised form (NFC), with
no DNS lookups on the hot path."""

import re
import unicodedata
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from normalizer.problems import InputProblem

# The library's check is slow (docs/PERFORMANCE.md), most of it the domain's IDNA rules, and runs on every
# order at ingest and again in the worker. An ordinary address (ASCII dot-atom before the @, which the library
# accepts as is) only needs its domain checked, and domains repeat: their verdict is cached. Anything else, and
# every failure, goes through the full check, so the answer and the error message are the library's own.
_ATEXT = r"a-z0-9_!#$%&'*+\-/=?^`{|}~"
_PLAIN = re.compile(rf"([{_ATEXT}]+(?:\.[{_ATEXT}]+)*)@([a-z0-9.-]+)\Z")
_MAX_LOCAL, _MAX_ADDRESS = 64, 254
_QUOTING = re.compile(r"[:(]")


def normalise_email(value: str) -> str:
    text = value.strip().lower()
    if not text:
        raise InputProblem("email is required")
    plain = _PLAIN.match(text)
    if plain and len(plain[1]) <= _MAX_LOCAL and len(text) <= _MAX_ADDRESS and _plain_domain(plain[2]):
        return text
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InputProblem(f"not a valid email address: {_reason(exc)}") from None
    # The library's normalised form: the local part in NFC, the domain as IDNA's Unicode form, so one address
    # written two ways (a composed or a decomposed accent, a punycode domain) is one subscriber.
    return unicodedata.normalize("NFC", checked.normalized.lower())


def stored_form(value: str) -> str:
    """`normalise_email`'s answer, or for text it refuses (an address stored under older rules), the same
    without the syntax check: NFC and lower-cased."""
    try:
        return normalise_email(value)
    except InputProblem:
        return unicodedata.normalize("NFC", value.strip().lower())


def _reason(exc: EmailNotValidError) -> str:
    """The library's reason up to where it quotes or names parts of the address (": '<'", "(… of 'x')")."""
    return _QUOTING.split(str(exc), maxsplit=1)[0].strip().rstrip(".") + "."


@lru_cache(maxsize=4096)
def _plain_domain(domain: str) -> bool:
    """True when the library accepts `domain` and keeps it as written (the local part has no say in this)."""
    try:
        checked = validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return False
    return checked.domain == domain and checked.ascii_domain == domain
