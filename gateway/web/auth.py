"""Bearer API keys, compared in constant time against every configured key."""

import hmac

from gateway.web.errors import Unauthorized


class ApiKeys:
    def __init__(self, keys: list[str]) -> None:
        self._keys = [key.encode() for key in keys]

    def check(self, headers: list[str]) -> None:
        """`headers`: every Authorization header of the request, in order. Exactly one is accepted: with two, a
        proxy and the app could each read a different one, so neither is trusted."""
        if len(headers) != 1:
            raise Unauthorized()
        scheme, _, token = headers[0].partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized()
        given = token.strip().encode()
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(given, key)
        if not matched:
            raise Unauthorized()
