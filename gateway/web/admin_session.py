"""Operator page sessions: a signed, expiring cookie issued after an API-key login, and the CSRF token bound to it.
The signing key lives only in this process's memory: a restart ends every session (log in again)."""

import hashlib
import hmac
import secrets

from gateway.web.digits import small_number

COOKIE = "cg_admin"
LOGIN_COOKIE = "cg_login"  # the login form's own CSRF token (double submit), before any session exists
LIFETIME_SECONDS = 8 * 3600


class AdminSessions:
    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._ended: dict[str, int] = {}  # nonce -> expiry of the sessions logged out before they expired

    def _sign(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    def issue(self, now: float) -> str:
        """A new session's cookie value: `expiry.nonce.signature`."""
        value = f"{int(now) + LIFETIME_SECONDS}.{secrets.token_urlsafe(16)}"
        return f"{value}.{self._sign(value)}"

    def nonce(self, cookie: str | None, now: float) -> str | None:
        """The session's nonce when `cookie` is one this process issued and it has not expired, else None."""
        expiry, _, rest = (cookie or "").partition(".")
        nonce, _, signature = rest.partition(".")
        expires = small_number(expiry)
        if expires is None or not nonce or expires < now:
            return None
        if not hmac.compare_digest(signature, self._sign(f"{expiry}.{nonce}")):
            return None
        return None if nonce in self._ended else nonce

    def end(self, cookie: str | None, now: float) -> None:
        """Log the session out: its cookie is refused from now on, even replayed from a copy."""
        nonce = self.nonce(cookie, now)
        if nonce is not None:
            self._ended = {n: expiry for n, expiry in self._ended.items() if expiry >= now}
            self._ended[nonce] = int((cookie or "").partition(".")[0])

    def csrf(self, nonce: str) -> str:
        """The CSRF token of the session with this nonce: every form POST must carry it."""
        return self._sign(f"csrf.{nonce}")


def same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
