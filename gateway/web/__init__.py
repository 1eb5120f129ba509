"""The HTTP side: the Starlette app, the Push Order fast path, webhook intake, the read API, auth, errors."""
