"""Bearer API keys, compared in constant time against every configured key."""

import hmac

from gateway.web.errors import Unauthorized


class ApiKeys:
    def __init__(self, keys: list[str]) -> None:
        self._keys = [key.encode() for key in keys]

    def check(self, header: str) -> None:
        """`header` is the request's Authorization header ("" when absent)."""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized()
        given = token.strip().encode()
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(given, key)
        if not matched:
            raise Unauthorized()
