"""Validation problems in one wording, wherever a person reads them: an API answer's details, a job's error, a
config error, a try-mapping line. A problem names the field and the kind of problem, never the value.

Job errors, API answers and log lines must not carry personal data, and any value of a payload may be personal
(an email in the currency field, a name in a quantity). The normalizer's own errors are `InputProblem`s written
that way; any other exception (a library's or the interpreter's, whose messages often quote their input) is
described by its type alone (`describe`).
"""

import re
from dataclasses import dataclass

from pydantic import ValidationError

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


class InputProblem(ValueError):
    """A value that cannot be used; the message names the kind of problem and never quotes the value."""


def describe(exc: BaseException) -> str:
    """`exc` in words safe to store and log."""
    if isinstance(exc, InputProblem):
        return str(exc)
    if isinstance(exc, KeyError) and len(exc.args) == 1 and _FIELD_NAME.fullmatch(str(exc.args[0])):
        return f"missing field '{exc.args[0]}'"
    return f"{type(exc).__name__} (its message is left out: it may quote the payload)"


# pydantic's own wording ("Extra inputs are not permitted") does not say that the key itself is the problem.
_WORDING = {"extra_forbidden": "unknown key"}


@dataclass(frozen=True, slots=True)
class Problem:
    loc: tuple[int | str, ...]
    kind: str  # pydantic's error type: missing, extra_forbidden, int_parsing, value_error, …
    message: str

    @property
    def field(self) -> str:
        """The dotted path: `items.0.title`."""
        return ".".join(str(part) for part in self.loc)

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.loc else self.message


def problems(error: ValidationError, prefix: tuple[int | str, ...] = ()) -> list[Problem]:
    found = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        kind = item["type"]
        message = _WORDING.get(kind) or item["msg"].removeprefix("Value error, ")
        found.append(Problem((*prefix, *item["loc"]), kind, message))
    return found


def summary(error: ValidationError, prefix: tuple[int | str, ...] = ()) -> str:
    """Every problem on one line: `totalCents: Input should be a valid integer; items.0.title: is required`."""
    return "; ".join(str(problem) for problem in problems(error, prefix))
