"""The base of every REST request body: refuses what the store could not hold.

PostgreSQL text cannot contain NUL and JSON columns cannot hold NaN or infinities; such input is
refused here with a 422 naming the field, rather than reaching the database.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def _nul_path(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _nul_path(key, path) or _nul_path(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _nul_path(item, f"{path}.{i}" if path else str(i))
            if found is not None:
                return found
    return None


class RequestBody(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        where = _nul_path(data, "")
        if where is not None:
            msg = f"NUL characters are not allowed (in {where or 'the body'})"
            raise ValueError(msg)
        return data
