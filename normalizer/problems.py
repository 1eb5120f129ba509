"""Validation problems in one wording, wherever a person reads them: an API answer's details, a job's error, a
config error, a try-mapping line. A problem names the field and the kind of problem, never the value."""

from dataclasses import dataclass

from pydantic import ValidationError

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
