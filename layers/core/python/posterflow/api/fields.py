"""Field types shared by the request models."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from posterflow.jobs import lanes


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


def _priority(value: Any) -> int | None:
    # JSON integers; digit strings too, as the seeds' lax integer fields took them (a form field).
    try:
        return lanes.priority_from_text(value) if isinstance(value, str) else lanes.check_priority(value)
    except lanes.InvalidPriority as exc:
        raise ValueError(exc.message) from None


Priority = Annotated[int | None, BeforeValidator(_priority), Field(
    description="1 (most urgent) to 10, BullMQ's convention; 1–3 run in the urgent lane, 4–10 and absent in the "
                "normal lane")]
"""A job's priority (:mod:`posterflow.jobs.lanes`); a value outside 1–10 is a 422 naming the range."""
