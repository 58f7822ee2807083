"""Field types shared by the request models."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator


def _no_empty_keys(value: Any, path: str = "") -> Any:
    # DynamoDB stores these as maps, and a map key must not be empty: refuse such input at the
    # boundary with a 422 rather than store something that cannot be read back.
    if isinstance(value, dict):
        for key, item in value.items():
            if not key:
                raise ValueError(f"empty key in {path or 'object'}: keys must be non-empty strings")
            _no_empty_keys(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _no_empty_keys(item, f"{path}[{i}]")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_no_empty_keys)]
JsonObjects = Annotated[list[dict[str, Any]], AfterValidator(_no_empty_keys)]
