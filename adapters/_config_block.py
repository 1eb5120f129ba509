"""The base of every config block of a custom source: unknown and missing keys are refused at start with a
message that names the key and lists what is allowed (pydantic's own wording names neither)."""

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError


class Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: ClassVar[str] = "key"

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        for key in data:
            if key not in fields:
                raise PydanticCustomError(
                    "unknown_key",
                    "unknown {kind} '{key}' (expected one of: {known})",
                    {"kind": cls.kind, "key": str(key), "known": ", ".join(fields)},
                )
        for name, info in fields.items():
            if info.is_required() and name not in data:
                raise PydanticCustomError("missing_key", "{kind} '{key}' is required", {"kind": cls.kind, "key": name})
        return data
