"""Where a photo, logo or profile image comes from: one parser and one owner check for every
source kind, used by the poster overlays, the crop API and the crop worker alike.

A source is one of:

- a ``data:`` URI (the bytes are in the request);
- an object of the project bucket the caller owns — a plain key or ``s3://<bucket>/<key>``
  under ``uploads/<tenant>/``, ``outputs/<tenant>/`` or ``assets/<tenant>/`` — read with the
  function's own credentials;
- the bucket's own ``https://…/assets/<path>`` URL (what templates write), which means the
  tenant's ``assets/<tenant>/<path>``, as the render engine serves it to templates;
- any other ``http(s)`` URL, fetched only if the network policy allows it (allow-list, no
  private or metadata addresses, every redirect re-checked).

Anything else — another tenant's object, another bucket, another scheme — is refused with a
reason before a byte is read, so an overlay can never be used to read someone else's poster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from botocore.exceptions import ClientError

from posterflow import aws, config, tenancy
from posterflow.net import fetch as fetching
from posterflow.net.errors import SourceChanged as SourceChanged
from posterflow.net.errors import SourceError as SourceError
from posterflow.net.errors import SourceNotFound as SourceNotFound
from posterflow.net.errors import SourceRefused as SourceRefused
from posterflow.net.errors import SourceTooLarge as SourceTooLarge
from posterflow.net.errors import SourceUnreadable as SourceUnreadable
from posterflow.net.policy import NetPolicy
from posterflow.resources import stack_spec

MAX_SOURCE_BYTES = 20 * 1024 * 1024
MAX_KEY_CHARS = 1024  # S3's own limit
MAX_URL_CHARS = 4096
_SCHEME = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://")

SourceKind = Literal["data", "object", "url"]


@dataclass(frozen=True)
class Source:
    kind: SourceKind
    text: str
    key: str | None = None
    url: str | None = None


def owned_prefixes() -> tuple[str, ...]:
    b = stack_spec().bucket
    return (b.uploads_prefix, b.outputs_prefix, b.assets_prefix)


def parse(text: str, *, tenant: str, what: str = "image") -> Source:
    """The source ``text`` names, checked against ``tenant``; raises :class:`SourceRefused`."""
    text = (text or "").strip()
    if not text:
        raise SourceRefused(f"{what} source is empty")
    if text.startswith("data:"):
        return Source("data", text)
    match = _SCHEME.match(text)
    if match is None:
        return Source("object", text, key=_owned_key(text, tenant, what))
    scheme = match.group("scheme").lower()
    if scheme == "s3":
        bucket, _, key = text[len("s3://"):].partition("/")
        if bucket != config.bucket():
            raise SourceRefused(f"{what} {text}: only objects of the project bucket can be read, not of {bucket!r}")
        return Source("object", text, key=_owned_key(key, tenant, what))
    if scheme not in ("http", "https"):
        raise SourceRefused(f"{what} {text}: scheme {scheme}:// is not supported; "
                            "use a data: URI, an S3 key you own or an allow-listed https:// URL")
    if len(text) > MAX_URL_CHARS:
        raise SourceRefused(f"{what} URL is longer than {MAX_URL_CHARS} characters")
    asset = bucket_asset_path(text)
    if asset is not None:
        return Source("object", text, key=_owned_key(
            tenancy.scoped_key(stack_spec().bucket.assets_prefix, tenant, asset), tenant, what))
    return Source("url", text, url=text)


def bucket_asset_path(url: str) -> str | None:
    """``<path>`` when ``url`` is the project bucket's ``…/assets/<path>`` URL (virtual-hosted
    or path style on AWS, the local cloud's endpoint), else None — decided exactly as the
    render engine decides which page requests it serves from the tenant's assets."""
    return NetPolicy.from_env().asset_path(url)


def _owned_key(key: str, tenant: str, what: str) -> str:
    key = key.lstrip("/")
    if not key or len(key) > MAX_KEY_CHARS:
        raise SourceRefused(f"{what}: an S3 key of 1..{MAX_KEY_CHARS} characters is needed")
    if any(segment in ("", ".", "..") for segment in key.split("/")):
        raise SourceRefused(f"{what} {key}: empty, '.' or '..' path segments are not allowed")
    if not tenancy.owns_key(tenant, key, owned_prefixes()):
        mine = ", ".join(f"{p}{tenancy.normalise(tenant)}/" for p in owned_prefixes())
        raise SourceRefused(f"{what} {key} is not one of your objects: use a key under {mine}, "
                            "a data: URI or an allow-listed https:// URL")
    return key


def read(source: Source, *, what: str = "image", etag: str | None = None) -> bytes:
    """The bytes of a parsed source; raises :class:`SourceError` subclasses with the reason."""
    try:
        if source.kind == "data":
            return fetching.decode_data_uri(source.text)
        if source.kind == "url":
            return fetching.fetch_url(source.url or "", NetPolicy.from_env(), what=what)
    except fetching.FetchRefused as exc:
        raise SourceRefused(exc.message) from None
    except fetching.FetchError as exc:
        raise SourceUnreadable(exc.message) from None
    return read_object(source.key or "", what=what, etag=etag)


def read_object(key: str, *, what: str = "image", etag: str | None = None,
                max_bytes: int = MAX_SOURCE_BYTES, bucket: str | None = None) -> bytes:
    """One object of the project bucket, at most ``max_bytes`` (``etag`` pins the version the
    caller saw, so a replaced object is not read half-new)."""
    bucket = bucket or config.bucket()
    params: dict[str, str] = {"Bucket": bucket, "Key": key}
    if etag:
        params["IfMatch"] = etag
    try:
        obj = aws.client("s3").get_object(**params)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404", "NotFound", "NoSuchBucket"):
            raise SourceNotFound(f"{what} s3://{bucket}/{key} does not exist") from None
        if code in ("PreconditionFailed", "412"):
            raise SourceChanged(f"{what} s3://{bucket}/{key} was replaced after it was queued") from None
        raise
    size = int(obj.get("ContentLength") or 0)
    if size > max_bytes:
        obj["Body"].close()
        raise SourceTooLarge(f"{what} s3://{bucket}/{key} is {size} bytes; the limit is {max_bytes}")
    return bytes(obj["Body"].read())


def fetch(text: str, *, tenant: str, what: str = "image") -> bytes:
    """:func:`parse` then :func:`read`."""
    return read(parse(text, tenant=tenant, what=what), what=what)
