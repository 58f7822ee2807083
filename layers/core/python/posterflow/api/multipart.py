"""multipart/form-data request bodies, read with ``python-multipart`` inside a size and time budget.

Only ``POST /api/batch/upload-zip`` takes one (seed 004's ``curl -F file=@photos.zip``). The
REST API's binary media type ``*/*`` (``posterflow.resources``) covers ``multipart/form-data``, so
API Gateway hands the body over base64-encoded and intact; the local gateway does the same.

:func:`body_bytes` turns the proxy event's body into bytes (refusing a body over the budget
before decoding it); :func:`parse` splits it into :class:`Part` s. The budget
(:class:`Budget`): the body's bytes, the number of parts, the bytes of a part that is not a
file, and the seconds the parse may take (checked between chunks). Every refusal is an
:class:`~posterflow.api.errors.ApiError` (413 over a size, 400 for a body that is not well-formed
multipart, 415 for another content type).
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass, field
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from posterflow.api.errors import ApiError
from posterflow.errors import Reason

MEDIA_TYPE = "multipart/form-data"
CHUNK = 256 * 1024  # fed to the parser at a time; the deadline is checked between chunks
MAX_BOUNDARY_CHARS = 70  # RFC 2046


@dataclass(frozen=True)
class Budget:
    max_body_bytes: int
    max_parts: int = 16
    max_field_bytes: int = 8 * 1024  # a part without a filename (projectId, priority …)
    max_seconds: float = 5.0
    big_upload_hint: str = ""
    """Appended to the 413's message: where bigger inputs go instead."""


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytearray = field(default_factory=bytearray)

    @property
    def is_file(self) -> bool:
        return self.filename is not None

    def text(self) -> str:
        """A field's value as text (fields are UTF-8, as browsers and curl send them)."""
        try:
            return bytes(self.data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(Reason.INVALID_ENCODING, f"form field {self.name!r} is not valid UTF-8",
                           {"field": self.name, "encoding": "utf-8", "position": exc.start}) from None


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type; 415 for any other type, 400
    for one without a usable boundary."""
    media, params = parse_options_header(content_type or "")
    if media.decode("latin-1").lower() != MEDIA_TYPE:
        raise ApiError(Reason.UNSUPPORTED_MEDIA_TYPE,
                       f"this route takes {MEDIA_TYPE} (curl -F file=@photos.zip); got "
                       f"{(content_type or 'no Content-Type')!r}",
                       {"content_type": content_type, "expected": MEDIA_TYPE})
    boundary = params.get(b"boundary", b"")
    if not boundary or len(boundary) > MAX_BOUNDARY_CHARS:
        raise ApiError(Reason.INVALID_MULTIPART,
                       f"the Content-Type has no usable boundary (1 to {MAX_BOUNDARY_CHARS} characters)",
                       {"content_type": content_type})
    return bytes(boundary)


def body_bytes(event: dict[str, Any], budget: Budget) -> bytes:
    """The request body as bytes, refused (413) above ``budget.max_body_bytes`` before it is
    decoded. A body API Gateway passed as text (no binary media type matched) is only usable
    if it survived as UTF-8: U+FFFD marks bytes it replaced."""
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        # Four base64 characters per three bytes: the decoded size, padding aside.
        if (len(raw) // 4) * 3 - raw[-2:].count("=") > budget.max_body_bytes:
            raise too_large(budget)
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(Reason.INVALID_ENCODING, "request body is marked base64-encoded but is not base64",
                           {"encoding": "base64"}) from None
    else:
        if "\ufffd" in raw:
            raise ApiError(Reason.INVALID_ENCODING,
                           "the multipart body reached the API as text with bytes replaced (U+FFFD): the API must "
                           f"declare {MEDIA_TYPE} a binary media type", {"encoding": "binary"})
        data = raw.encode("utf-8", "surrogateescape")
    if len(data) > budget.max_body_bytes:
        raise too_large(budget)
    return data


def too_large(budget: Budget) -> ApiError:
    hint = f"; {budget.big_upload_hint}" if budget.big_upload_hint else ""
    return ApiError(Reason.PAYLOAD_TOO_LARGE,
                    f"request body is over this route's {budget.max_body_bytes} bytes{hint}",
                    {"max_bytes": budget.max_body_bytes})


def parse(data: bytes, content_type: str | None, budget: Budget) -> list[Part]:
    """The parts of a multipart body, in order, within ``budget``."""
    boundary = boundary_of(content_type)
    if len(data) > budget.max_body_bytes:
        raise too_large(budget)
    parts: list[Part] = []
    state: dict[str, Any] = {"field": b"", "value": b"", "headers": {}, "ended": False}

    def header_field(buf: bytes, start: int, end: int) -> None:
        state["field"] += buf[start:end]

    def header_value(buf: bytes, start: int, end: int) -> None:
        state["value"] += buf[start:end]

    def header_end() -> None:
        state["headers"][state["field"].decode("latin-1").strip().lower()] = state["value"].decode("latin-1").strip()
        state["field"], state["value"] = b"", b""

    def headers_finished() -> None:
        headers: dict[str, str] = state["headers"]
        state["headers"] = {}
        disposition, params = parse_options_header(headers.get("content-disposition", ""))
        name = params.get(b"name")
        if disposition.lower() != b"form-data" or name is None:
            raise _bad("a part has no Content-Disposition: form-data with a name")
        if len(parts) >= budget.max_parts:
            raise ApiError(Reason.PAYLOAD_TOO_LARGE, f"the form has more than {budget.max_parts} parts",
                           {"max_parts": budget.max_parts})
        filename = params.get(b"filename")
        parts.append(Part(name=_text(name), filename=None if filename is None else _text(filename),
                          content_type=headers.get("content-type")))

    def part_data(buf: bytes, start: int, end: int) -> None:
        part = parts[-1]
        part.data += buf[start:end]
        if not part.is_file and len(part.data) > budget.max_field_bytes:
            raise ApiError(Reason.PAYLOAD_TOO_LARGE,
                           f"form field {part.name!r} is over {budget.max_field_bytes} bytes",
                           {"field": part.name, "max_bytes": budget.max_field_bytes})

    def end() -> None:
        state["ended"] = True

    parser = MultipartParser(boundary, {
        "on_header_field": header_field, "on_header_value": header_value, "on_header_end": header_end,
        "on_headers_finished": headers_finished, "on_part_data": part_data, "on_end": end,
    }, max_size=budget.max_body_bytes)
    deadline = time.monotonic() + budget.max_seconds
    view = memoryview(data)
    try:
        for offset in range(0, len(data), CHUNK):
            parser.write(bytes(view[offset:offset + CHUNK]))
            if time.monotonic() > deadline:
                raise ApiError(Reason.PAYLOAD_TOO_LARGE, f"reading the form took over {budget.max_seconds:g} s",
                               {"max_seconds": budget.max_seconds})
        parser.finalize()
    except MultipartParseError as exc:
        raise _bad(f"the body is not well-formed multipart/form-data ({exc})") from None
    if not state["ended"]:
        raise _bad("the body ends before the multipart closing boundary (a truncated upload?)")
    return parts


def _text(value: bytes) -> str:
    # Header parameters come as bytes; curl and browsers send UTF-8 file names.
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _bad(message: str) -> ApiError:
    return ApiError(Reason.INVALID_MULTIPART, message)
