"""JMESPath expressions of a `mapping:` block, compiled and checked when the config is read: an expression that
does not compile, an unknown function or a wrong number of arguments is a config error naming the expression,
not a failure at the first delivery."""

from typing import Annotated, Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.functions import Functions
from jmespath.parser import ParsedResult
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

_FUNCTIONS: dict[str, Any] = Functions.FUNCTION_TABLE


def _check_functions(node: Any, text: str) -> None:
    """jmespath.compile accepts unknown functions and wrong arities; they would only fail on the first delivery."""
    if not isinstance(node, dict):
        return
    if node.get("type") == "function_expression":
        name = node["value"]
        spec = _FUNCTIONS.get(name)
        if spec is None:
            raise PydanticCustomError(
                "jmespath", "JMESPath expression '{text}': unknown function {name}()", {"text": text, "name": name}
            )
        signature = spec["signature"]
        given = len(node["children"])
        variadic = bool(signature) and signature[-1].get("variadic", False)
        if given < len(signature) or (given > len(signature) and not variadic):
            raise PydanticCustomError(
                "jmespath",
                "JMESPath expression '{text}': {name}() takes {count} argument(s), not {given}",
                {"text": text, "name": name, "count": len(signature), "given": given},
            )
    for child in node.get("children", ()):
        _check_functions(child, text)


def compile_expression(text: str) -> ParsedResult:
    try:
        parsed = jmespath.compile(text)
    except JMESPathError as exc:
        reason = str(exc).splitlines()[0].removesuffix(":").removesuffix(", for expression")
        raise PydanticCustomError(
            "jmespath", "JMESPath expression '{text}' does not compile: {reason}", {"text": text, "reason": reason}
        ) from None
    _check_functions(parsed.parsed, text)
    return parsed


def _compiles(text: str) -> str:
    compile_expression(text)
    return text


Expression = Annotated[str, AfterValidator(_compiles)]
