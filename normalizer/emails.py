"""Email addresses: trimmed, lower-cased, syntax-checked (no DNS lookups on the hot path)."""

from email_validator import EmailNotValidError, validate_email


def normalise_email(value: str) -> str:
    text = value.strip().lower()
    if not text:
        raise ValueError("email is required")
    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    return text
