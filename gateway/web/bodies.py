"""JSON request bodies validated by a pydantic model, with the errors every endpoint gives: 400 for what is
not a JSON object, 422 with one detail per problem and its dotted field path."""

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from gateway.web import errors

Model = TypeVar("Model", bound=BaseModel)


def parse(model: type[Model], body: bytes, what: str) -> Model:
    """`body` as a `model`, or the error for it; `what` names the thing in the message ("The product batch")."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        problems = exc.errors(include_url=False)
        if any(p["type"] == "json_invalid" for p in problems):
            raise errors.InvalidJson("The request body is not valid JSON.") from None
        if any(p["type"] == "model_type" and not p["loc"] for p in problems):
            raise errors.InvalidJson("The request body must be a JSON object.") from None
        raise errors.ValidationFailed(
            f"{what} has {len(problems)} problem{'s' if len(problems) > 1 else ''}; see details.",
            errors.validation_details(exc),
        ) from None
