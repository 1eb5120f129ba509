"""One error hierarchy and the one function that builds every JSON error body (its shape and codes: docs/api.md)."""

import logging
import sqlite3
from typing import Any

from pydantic import ValidationError

from gateway.logs import redact_path
from normalizer.problems import problems
from store.db import DatabaseFileLost, StoreUnavailable

log = logging.getLogger("gateway.web")


class GatewayError(Exception):
    status = 500
    code = "internal_error"
    message = "The gateway hit an unexpected error."

    def __init__(
        self,
        message: str | None = None,
        details: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details or []
        self.headers = headers or {}


class Unauthorized(GatewayError):
    status, code, message = 401, "unauthorized", "A valid API key is required (Authorization: Bearer <key>)."


class BadSignature(GatewayError):
    status, code, message = (
        401,
        "unauthorized",
        "The webhook signature does not match any secret of this source.",
    )
    # By the check that failed (adapters.SignatureError.check); the log line gives the precise reason.
    messages = {
        "header": "The webhook's signature header is missing or malformed.",
        "timestamp": "The webhook's signed timestamp is too old or in the future: check the sender's clock.",
        "signature": message,
    }

    def __init__(self, check: str = "signature") -> None:
        super().__init__(self.messages.get(check, self.message))


class InvalidJson(GatewayError):
    status, code, message = 400, "invalid_json", "The request body must be a JSON object."


class Forbidden(GatewayError):
    status, code, message = 403, "forbidden", "This client may not use this route."


class NotFound(GatewayError):
    status, code, message = 404, "not_found", "Nothing exists at this address."


class MethodNotAllowed(GatewayError):
    status, code, message = 405, "method_not_allowed", "This method is not allowed here."


class Conflict(GatewayError):
    status, code, message = 409, "conflict", "The resource is not in a state that allows this."


class PayloadTooLarge(GatewayError):
    status, code, message = 413, "payload_too_large", "The request body is over the configured limit."


class ValidationFailed(GatewayError):
    status, code, message = 422, "validation_error", "The order does not follow the Push Order schema."


# When the database file was deleted or replaced under the running process (the log says which and where).
FILE_LOST = "The database file was deleted or replaced while the gateway ran; restart the gateway."


class Unavailable(GatewayError):
    status, code, message = 503, "unavailable", "The database cannot take writes right now; retry shortly."

    def __init__(self, message: str | None = None, retry_after: int = 5) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


def validation_details(error: ValidationError, prefix: tuple[str, ...] = ()) -> list[dict[str, str]]:
    return [{"field": problem.field, "message": problem.message} for problem in problems(error, prefix)]


def error_body(error: GatewayError) -> dict[str, Any]:
    return {
        "success": False,
        "error": {"code": error.code, "message": error.message, "details": error.details},
    }


def answer_for(exc: Exception, path: str) -> GatewayError:
    """What a request answers when its handler raised `exc`: a GatewayError as it is, 503 when the database
    cannot take the write, and 500 (its traceback logged, no payload) for anything else."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, DatabaseFileLost):
        return Unavailable(FILE_LOST)
    if isinstance(exc, StoreUnavailable | sqlite3.OperationalError):
        return Unavailable()
    log.exception("unhandled error", extra={"path": redact_path(path)})
    return GatewayError()
