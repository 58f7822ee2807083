"""The request-body gate: every body the API reads as text is checked before the resolver.

Powertools parses bodies with plain ``json.loads`` and the routes store what they get in
DynamoDB, so some bodies used to end in an unhandled exception (a 502): nesting deep
enough for a ``RecursionError``, bytes that are not UTF-8, integers over Python's
int-from-string digit limit, and numbers DynamoDB cannot hold. The gate answers those with
a 4xx in the API's error shape instead:

* 413 ``payload_too_large``: over 4 MiB, what fits Lambda's 6 MB synchronous payload once
  API Gateway has base64-encoded it (the binary media type is ``*/*``, so every body is);
* 400 ``invalid_encoding``: not UTF-8 (see :func:`_check_text` for what that looks like
  behind API Gateway);
* 400 ``malformed_json``: not JSON, ``NaN``/``Infinity`` included (they are not JSON);
* 422 ``too_deep``: objects and arrays nested more than :data:`MAX_DEPTH` levels;
* 422 ``number_out_of_range``: a number DynamoDB cannot store.

The REST API's binary media type is ``*/*`` (``posterflow.resources``), so API Gateway hands
every body to the function base64-encoded. The gate decodes each one, except the forms and
ZIPs a route reads as bytes (:data:`BYTES_TYPES`), and passes it on as text: the resolver and
the routes see the body as before, and the checks above apply to the decoded bytes.

The gate parses each JSON body once and hands the result to the resolver through
:func:`json_body`, the resolver's JSON deserializer.
"""

from __future__ import annotations

import base64
import binascii
import json
from contextvars import ContextVar
from typing import Any

from posterflow.api.errors import ApiError
from posterflow.errors import Reason

# 4 MiB base64-encoded is 5.6 MB, leaving room for the event's headers within Lambda's 6 MB
# synchronous payload: a larger body would fail at AWS's own layer, without this error shape.
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64  # levels of objects/arrays; real bodies use 3 or 4
# DynamoDB numbers: at most 38 significant digits, magnitude 1E-130 to 9.99…E+125.
MAX_INT_DIGITS = 38
MIN_MAGNITUDE = 1e-130
MAX_MAGNITUDE = 1e126  # exclusive
_INT_LIMIT = 10**MAX_INT_DIGITS  # exclusive
# Routes that read a multipart/form-data body themselves, with their own size budget.
MULTIPART_ROUTES = frozenset({("POST", "/api/batch/upload-zip")})
# Bodies left base64-encoded for the route to read as bytes (a form elsewhere, a bare ZIP: the
# resolver answers 415); any other base64 body is decoded and must be UTF-8 text.
BYTES_TYPES = ("multipart/form-data", "application/zip")

# The body parsed by the last gate call in this thread, for the resolver: (text, value).
_parsed: ContextVar[tuple[str, Any] | None] = ContextVar("posterflow_parsed_body", default=None)


class _NotJsonConstant(Exception):
    """``NaN``, ``Infinity`` or ``-Infinity``: Python's json accepts them, JSON does not."""


def looks_like_json(text: str) -> bool:
    """Bodies that are JSON count as JSON whatever the Content-Type says."""
    return text.lstrip()[:1] in ("{", "[")


def gate(event: dict[str, Any]) -> dict[str, Any]:
    """Check the body of a REST proxy event; raise :class:`ApiError` with the 4xx to answer.

    Returns the event for the resolver: ``event`` itself, or a copy whose base64 body is
    decoded to text (``isBase64Encoded`` false), as if API Gateway had passed it as text."""
    _parsed.set(None)  # never hand a previous request's body to this one
    raw = event.get("body")
    if not raw:
        return event
    content_type = _content_type(event)
    if _is_multipart_route(event, content_type):
        return event  # the route reads the form within its own budget (api/multipart.py)
    if event.get("isBase64Encoded"):
        if _decoded_size(raw) > MAX_BODY_BYTES:
            raise _too_large()
        if content_type.split(";", 1)[0].strip() in BYTES_TYPES:
            return event  # bytes: the route reads them (or the resolver refuses the type)
        text = _decode_base64_text(raw)
        event = {**event, "body": text, "isBase64Encoded": False}
    else:
        if len(raw) > MAX_BODY_BYTES:
            raise _too_large()
        _check_text(raw)
        text = raw
    if looks_like_json(text) or _is_json_type(content_type):
        _parsed.set((text, parse_json(text)))
    return event


def json_body(text: str) -> Any:
    """The resolver's JSON deserializer: the gate's result for the same text, else a parse."""
    hit = _parsed.get()
    if hit is not None and hit[0] is text:
        _parsed.set(None)  # once: a second read gets its own copy, as with json.loads
        return hit[1]
    return json.loads(text)


def parse_json(text: str) -> Any:
    """``text`` as JSON within the limits, or :class:`ApiError`."""
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        # The C scanner recurses per level: far past MAX_DEPTH, so no need to say where.
        raise _too_deep(None) from None
    except json.JSONDecodeError as exc:
        raise ApiError(Reason.MALFORMED_JSON, f"request body is not valid JSON: {exc.msg} "
                       f"(line {exc.lineno}, column {exc.colno})",
                       {"error": exc.msg, "line": exc.lineno, "column": exc.colno, "position": exc.pos}) from None
    except _NotJsonConstant as exc:
        raise ApiError(Reason.MALFORMED_JSON, f"request body is not valid JSON: {exc} is not a JSON value; "
                       "send null or a string instead", {"error": "not a JSON value", "literal": str(exc)}) from None
    except ValueError:
        # Integers longer than Python's int-from-string limit (4300 digits) fail inside the parse.
        raise _out_of_range(None) from None
    _check_tree(value)
    return value


def _no_constant(literal: str) -> Any:
    raise _NotJsonConstant(literal)


def _content_type(event: dict[str, Any]) -> str:
    for name, value in (event.get("headers") or {}).items():
        if name.lower() == "content-type":
            return str(value or "").strip().lower()
    return ""


def _is_multipart_route(event: dict[str, Any], content_type: str) -> bool:
    """A multipart form posted to a route that takes one (:data:`MULTIPART_ROUTES`); the
    same body anywhere else is gated as before."""
    return (content_type.startswith("multipart/form-data")
            and (str(event.get("httpMethod", "")).upper(), event.get("path")) in MULTIPART_ROUTES)


def _is_json_type(content_type: str) -> bool:
    # Powertools parses a body with no Content-Type as JSON too.
    return not content_type or content_type.startswith("application/json")


def _too_large() -> ApiError:
    return ApiError(Reason.PAYLOAD_TOO_LARGE,
                    "request body is over 4 MiB; for large batches upload a manifest with POST /api/uploads",
                    {"max_bytes": MAX_BODY_BYTES})


def _decoded_size(raw: str) -> int:
    """The size of a base64 body once decoded (three bytes per four characters, padding aside)."""
    return (len(raw) // 4) * 3 - raw[-2:].count("=")


def _decode_base64_text(raw: str) -> str:
    try:
        data = base64.b64decode(raw)
    except binascii.Error:
        raise ApiError(Reason.INVALID_ENCODING, "request body is marked base64-encoded but is not base64",
                       {"encoding": "base64", "position": None}) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc.start, "bytes that are not UTF-8") from None


def _check_text(text: str) -> None:
    """Refuse text that did not come from UTF-8.

    Behind an API whose binary media types do not match a body's type, API Gateway passes
    the body as text and puts U+FFFD in place of each byte that is not UTF-8, so U+FFFD is
    the only trace an invalid body leaves: it is refused, at the price of refusing a client
    that really meant to send U+FFFD (a mark of text already damaged). The stack's API
    (``*/*``) sends every body base64-encoded instead, decoded strictly by
    :func:`_decode_base64_text`; text bodies still come from direct invokes, whose JSON
    event can also carry lone surrogates (``"\\udcff"``).
    """
    if text.isascii():  # O(1) for str: most bodies stop here
        return
    # find and encode run in C: several times faster than a regular expression over the text.
    replacement = text.find("\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        if replacement < 0 or exc.start < replacement:
            raise _not_utf8(exc.start, "a lone surrogate, which UTF-8 cannot encode") from None
    if replacement >= 0:
        raise _not_utf8(replacement, "a U+FFFD replacement character, which stands for bytes that were not UTF-8")


def _not_utf8(position: int, what: str) -> ApiError:
    return ApiError(Reason.INVALID_ENCODING,
                    f"request body is not valid UTF-8 ({what}, at position {position}); send it encoded as UTF-8",
                    {"encoding": "utf-8", "position": position})


# One node of the walk: (container, depth, parent node); keys are looked up only for errors.
_Node = tuple[Any, int, Any]


def _check_tree(root: Any) -> None:
    """Depth and numbers of a parsed body, without recursion: an explicit stack of containers.

    The loop runs once per value of the body, so its checks are inline rather than calls.
    The root goes in a wrapper list (depth 0) so that a bare number is checked too.
    """
    stack: list[_Node] = [([root], 0, None)]
    while stack:
        node = stack.pop()
        container, depth = node[0], node[1]
        if depth > MAX_DEPTH:
            raise _too_deep(_path(node[2], container))
        for value in container.values() if type(container) is dict else container:
            kind = type(value)
            if kind is str:
                continue
            if kind is dict or kind is list:
                stack.append((value, depth + 1, node))
            elif kind is int:
                if not -_INT_LIMIT < value < _INT_LIMIT:
                    raise _out_of_range(_path(node, value))
            # NaN fails the comparisons; json gives inf for literals past float's range (1e400).
            elif kind is float and not (value == 0.0 or MIN_MAGNITUDE <= abs(value) < MAX_MAGNITUDE):
                raise _out_of_range(_path(node, value))


def _path(node: _Node | None, child: Any) -> list[Any]:
    """The keys from the body's root to ``child``, a value in ``node``'s container."""
    keys: list[Any] = []
    while node is not None:
        keys.append(_key_of(node[0], child))
        node, child = node[2], node[0]
    return keys[::-1][1:]  # without the wrapper's index


def _key_of(container: Any, child: Any) -> Any:
    items = container.items() if type(container) is dict else enumerate(container)
    return next(key for key, value in items if value is child)


def _too_deep(path: list[Any] | None) -> ApiError:
    return ApiError(Reason.TOO_DEEP, f"request body nests objects and arrays more than {MAX_DEPTH} levels deep; "
                    "flatten the data", {"max_depth": MAX_DEPTH, "path": path})


def _out_of_range(path: list[Any] | None) -> ApiError:
    at = "" if not path else " at " + ".".join(map(str, path))
    return ApiError(Reason.NUMBER_OUT_OF_RANGE,
                    f"a number in the request body{at} is out of range: integers may have at most {MAX_INT_DIGITS} "
                    f"digits and other numbers must be 0 or between {MIN_MAGNITUDE:g} and {MAX_MAGNITUDE:g} in "
                    "magnitude (what DynamoDB stores); send such values as strings",
                    {"path": path, "max_int_digits": MAX_INT_DIGITS,
                     "min_magnitude": MIN_MAGNITUDE, "max_magnitude": MAX_MAGNITUDE})
