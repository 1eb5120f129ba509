"""normalise_email takes a shortcut for ordinary addresses; it must answer exactly as email_validator does."""

import re
import unicodedata

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from normalizer.emails import normalise_email


def _library(value: str) -> str:
    text = value.strip().lower()
    if not text:
        raise ValueError("email is required")
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        reason = re.split(r"[:(]", str(exc), maxsplit=1)[0].strip().rstrip(".")
        raise ValueError(f"not a valid email address: {reason}.") from None
    return unicodedata.normalize("NFC", checked.normalized.lower())


def _same(value: str) -> None:
    try:
        expected: str | Exception = _library(value)
    except ValueError as exc:
        expected = exc
    if isinstance(expected, Exception):
        with pytest.raises(ValueError) as raised:
            normalise_email(value)
        assert str(raised.value) == str(expected)
    else:
        assert normalise_email(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        " Buyer@Example.com ",
        "a.b+tag@shop.example.co.uk",
        "a..b@example.com",
        ".a@example.com",
        "a@example..com",
        "a@-example.com",
        "a@example-.com",
        "a@example.com.",
        "a@localhost",
        "a@shop.test",
        "a@shop.local",
        "a@123.456",
        "a@example.c",
        "a@xn--bcher-kva.example",
        "a@bücher.example",
        "ü@example.com",
        '"quoted"@example.com',
        "Jane <jane@example.com>",
        "a@[127.0.0.1]",
        "a@b@example.com",
        "no-at-sign",
        "x" * 64 + "@example.com",
        "x" * 65 + "@example.com",
        "a@" + "b" * 63 + ".com",
        "a@" + "b" * 64 + ".com",
        "a@" + ".".join(["b" * 60] * 4) + ".com",
        "x" * 64 + "@" + ".".join(["b" * 60] * 3) + ".com",
        "",
        "   ",
    ],
)
def test_same_answer_as_the_library(value: str) -> None:
    _same(value)


_ALPHABET = 'ab.-_+@0Z!~ü"<> '


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=30))
def test_same_answer_as_the_library_for_any_text(value: str) -> None:
    _same(value)


@settings(max_examples=200, deadline=None)
@given(
    st.from_regex(r"[a-z0-9.+_-]{1,70}", fullmatch=True),
    st.from_regex(r"[a-z0-9-]{0,64}(\.[a-z0-9-]{0,64}){0,4}", fullmatch=True),
)
def test_same_answer_for_address_shaped_text(local: str, domain: str) -> None:
    _same(f"{local}@{domain}")


@pytest.mark.parametrize(
    "spellings",
    [
        ["a@b.cóm", unicodedata.normalize("NFD", "a@b.cóm"), "A@B.CÓM"],
        ["josé@example.com", unicodedata.normalize("NFD", "JOSÉ@example.com")],
        ["a@bücher.example", "a@xn--bcher-kva.example", unicodedata.normalize("NFD", "a@BÜCHER.example")],
    ],
)
def test_one_address_written_several_ways_is_one_normalised_form(spellings: list[str]) -> None:
    forms = {normalise_email(spelling) for spelling in spellings}
    assert len(forms) == 1
    (form,) = forms
    assert form == unicodedata.normalize("NFC", form) == form.lower()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='ab.-_+@0Z!~üé\u0301\u0308"<> ', max_size=30))
def test_the_normalised_form_is_its_own_normalised_form(value: str) -> None:
    try:
        form = normalise_email(value)
    except ValueError:
        return
    assert normalise_email(form) == form
