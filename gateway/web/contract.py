"""What each route declares about itself: its query and body models (the ones it validates with), its answers,
its errors and how it is authorised. Route modules build their `ROUTES` with `api_route`; the OpenAPI document
is generated from these declarations, so it cannot drift from what the handlers check."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.routing import Route

from gateway.web import errors

Auth = Literal["bearer", "webhook", "metrics", "none"]
_Q = TypeVar("_Q", bound=BaseModel)


class Model(BaseModel):
    """Base of query and body models: unknown fields are refused, so a typo in a query is a 422."""

    model_config = ConfigDict(extra="forbid")


class Answer(BaseModel):
    """Base of answer models. Their schemas allow more fields than they list: a client must ignore fields it
    does not know, so that adding one is not a breaking change."""


class ErrorDetail(Answer):
    field: str = Field(description="Dotted path of the field or parameter, list indexes as numbers.")
    message: str


class ErrorInfo(Answer):
    code: str = Field(description="snake_case: unauthorized, invalid_json, validation_error, not_found, …")
    message: str = Field(description="One sentence.")
    details: list[ErrorDetail] = Field(description="One entry per problem; empty when none is about a field.")


class ErrorBody(Answer):
    """Every 4xx and 5xx answer of the API."""

    success: Literal[False]
    error: ErrorInfo


@dataclass(frozen=True)
class Contract:
    summary: str
    tag: str
    answers: Mapping[int, type[BaseModel] | None]  # success status -> body model (None: a body of `media`)
    errors: tuple[int, ...] = ()
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    auth: Auth = "bearer"
    media: str = "application/json"
    description: str = ""
    path_params: Mapping[str, str] = field(default_factory=dict)  # name -> description
    raw_body: str | None = None  # a body taken as bytes (a platform's webhook): what it is


class ApiRoute(Route):
    """A Starlette route that carries its contract."""

    def __init__(
        self, path: str, endpoint: Callable[..., Any], method: str, contract: Contract, name: str | None = None
    ) -> None:
        super().__init__(path, endpoint, methods=[method], name=name)
        self.method = method
        self.contract = contract


def api_route(
    path: str, endpoint: Callable[..., Any], method: str, contract: Contract, name: str | None = None
) -> ApiRoute:
    """A route and its contract; `name` (default: the endpoint's) is its OpenAPI operationId."""
    return ApiRoute(path, endpoint, method, contract, name)


def parse_query(model: type[_Q], request: Request) -> _Q:
    """The request's query string validated by `model`; 422 with one detail per problem."""
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise errors.ValidationFailed(
            "The query string is not valid; see details.", errors.validation_details(exc)
        ) from None
