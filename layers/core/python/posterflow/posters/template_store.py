"""Versioned templates: metadata in DynamoDB, the source in S3 (docs/architecture.md, data model).

A version is of one ``kind``: ``html`` (the HTML under ``templates/<tenant>/<section>/v<N>.html``)
or ``canvas`` (a Fabric.js canvas with its variable mappings, :mod:`posterflow.posters.canvas`,
stored as one JSON document under ``…/v<N>.json``); ``html_key`` is the S3 key of either.

A template id is ``<section>_latest`` (the active version), ``<section>_v<N>`` or just
``<section>`` (also the active version). Uploading creates version N+1; activating moves the
``ACTIVE`` pointer. Versions are immutable, so a job pinned to a version renders the same HTML
however often it is retried.

Sections are namespaced by tenant: ``testimonial`` of one API key is not ``testimonial`` of
another (records under ``TEMPLATE#<tenant>#<section>``, HTML under
``templates/<tenant>/<section>/``), so ids keep the seeds' short form. Every function takes the
tenant explicitly or uses the caller's (:func:`posterflow.tenancy.current`).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, Field

from posterflow import aws, config, tenancy
from posterflow.posters import templating
from posterflow.posters.canvas import model as canvas_model
from posterflow.posters.errors import InvalidTemplateId as InvalidTemplateId
from posterflow.posters.errors import TemplateNotFound as TemplateNotFound
from posterflow.resources import stack_spec

_ID = re.compile(r"^(?P<section>[A-Za-z0-9][A-Za-z0-9_-]{0,63}?)(?:_(?:latest|v(?P<version>\d{1,6})))?$")
SECTION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
LIST_KEY = "TEMPLATES#{tenant}"
TemplateKind = Literal["html", "canvas"]


class TemplateVersion(BaseModel):
    id: str = Field(description="<section>_v<N>")
    section: str
    version: int
    name: str
    html_key: str = Field(description="S3 key of the source: the HTML, or a canvas version's JSON document")
    kind: TemplateKind = "html"
    placeholders: list[templating.Placeholder]
    width: int | None = None
    height: int | None = None
    size: str | None = None
    format: str = "png"
    javascript: bool = False
    bleed_mm: float | None = None
    created_at: str
    is_active: bool = False


def parse_template_id(template_id: str) -> tuple[str, int | None]:
    """``(section, version)``; version None means the active one."""
    m = _ID.match(template_id or "")
    if not m:
        raise InvalidTemplateId(
            f"invalid template id {template_id!r}: use <section>, <section>_latest or <section>_v<N>")
    version = m.group("version")
    return m.group("section"), int(version) if version else None


def _pk(tenant: str, section: str) -> str:
    return f"TEMPLATE#{tenant}#{section}"


def _tenant(tenant: str | None) -> str:
    return tenancy.normalise(tenant) if tenant else tenancy.current()


def _sk(version: int) -> str:
    return f"V#{version:06d}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _from_item(item: dict[str, Any], active: int | None) -> TemplateVersion:
    data = aws_item_to_py(item)
    return TemplateVersion(
        id=f"{data['section']}_v{int(data['version'])}", section=data["section"], version=int(data["version"]),
        name=data["name"], html_key=data["html_key"], kind=data.get("kind", "html"),
        bleed_mm=float(data["bleed_mm"]) if data.get("bleed_mm") is not None else None,
        placeholders=[templating.Placeholder(**p) for p in data.get("placeholders", [])],
        width=int(data["width"]) if data.get("width") else None,
        height=int(data["height"]) if data.get("height") else None,
        size=data.get("size"), format=data.get("format", "png"), javascript=bool(data.get("javascript", False)),
        created_at=data["created_at"], is_active=active == int(data["version"]),
    )


def aws_item_to_py(item: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    des = TypeDeserializer()
    return {k: des.deserialize(v) for k, v in item.items()}


def _to_item(data: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    ser = TypeSerializer()
    return {k: ser.serialize(v) for k, v in data.items() if v is not None}


def _active_version(tenant: str, section: str) -> int | None:
    item = aws.client("dynamodb").get_item(
        TableName=config.table(), Key={"PK": {"S": _pk(tenant, section)}, "SK": {"S": "ACTIVE"}}, ConsistentRead=True
    ).get("Item")
    return int(item["version"]["N"]) if item else None


def upload(section: str, name: str, html: str, *, set_as_active: bool = True, width: int | None = None,
           height: int | None = None, size: str | None = None, fmt: str = "png", javascript: bool = False,
           placeholders: list[templating.Placeholder] | None = None, tenant: str | None = None) -> TemplateVersion:
    """Store a new version. Raises ``templating.TemplateError`` subclasses for bad HTML."""
    owner = _tenant(tenant)
    if not SECTION.match(section):
        raise InvalidTemplateId(f"invalid section {section!r}: letters, digits and '-' only, at most 64")
    templating.check_size(html)
    templating.validate_template(html)
    found = {p.name: p for p in templating.extract_placeholders(html)}
    for given in placeholders or []:
        if given.name in found:
            found[given.name] = given
    return _store_version(owner, section, html.encode("utf-8"), "html", "text/html; charset=utf-8", {
        "name": name, "kind": "html", "placeholders": [p.model_dump() for p in found.values()], "width": width,
        "height": height, "size": size, "format": fmt, "javascript": javascript,
    }, set_as_active=set_as_active)


def upload_canvas(section: str, name: str, canvas: canvas_model.CanvasTemplate, *, set_as_active: bool = True,
                  size: str | None = None, fmt: str = "png", bleed_mm: float | None = None,
                  placeholders: list[templating.Placeholder] | None = None,
                  tenant: str | None = None) -> TemplateVersion:
    """Store a new canvas version (``canvas`` already validated: :func:`canvas_model.validate`)."""
    owner = _tenant(tenant)
    if not SECTION.match(section):
        raise InvalidTemplateId(f"invalid section {section!r}: letters, digits and '-' only, at most 64")
    found = canvas_model.placeholders(canvas, placeholders)
    body = canvas.model_dump_json().encode("utf-8")
    return _store_version(owner, section, body, "json", "application/json", {
        "name": name, "kind": "canvas", "placeholders": [p.model_dump() for p in found], "width": canvas.width,
        "height": canvas.height, "size": size, "format": fmt, "javascript": False,
        "bleed_mm": Decimal(str(bleed_mm)) if bleed_mm is not None else None,
    }, set_as_active=set_as_active)


def _store_version(owner: str, section: str, body: bytes, ext: str, content_type: str, fields: dict[str, Any], *,
                   set_as_active: bool) -> TemplateVersion:
    """Version N+1 of the section: the source under ``…/v<N>.<ext>``, then its record."""
    ddb, table = aws.client("dynamodb"), config.table()
    version = int(ddb.update_item(
        TableName=table, Key={"PK": {"S": _pk(owner, section)}, "SK": {"S": "COUNTER"}},
        UpdateExpression="ADD next_version :one", ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="UPDATED_NEW",
    )["Attributes"]["next_version"]["N"])
    html_key = tenancy.scoped_key(stack_spec().bucket.templates_prefix, owner, f"{section}/v{version:06d}.{ext}")
    aws.client("s3").put_object(Bucket=config.bucket(), Key=html_key, Body=body, ContentType=content_type)
    data = {
        "PK": _pk(owner, section), "SK": _sk(version), "GSI1PK": LIST_KEY.format(tenant=owner),
        "GSI1SK": f"{section}#{version:06d}", "section": section, "version": version, "html_key": html_key,
        **fields, "created_at": _now(),
    }
    ddb.put_item(TableName=table, Item=_to_item(data), ConditionExpression="attribute_not_exists(PK)")
    if set_as_active or _active_version(owner, section) is None:
        activate(f"{section}_v{version}", tenant=owner)
    return get(f"{section}_v{version}", tenant=owner)


def activate(template_id: str, *, tenant: str | None = None) -> TemplateVersion:
    owner = _tenant(tenant)
    section, version = parse_template_id(template_id)
    tv = get(template_id, tenant=owner)
    aws.client("dynamodb").put_item(TableName=config.table(), Item=_to_item(
        {"PK": _pk(owner, section), "SK": "ACTIVE", "version": tv.version, "activated_at": _now()}))
    return tv.model_copy(update={"is_active": True}) if version is None or version == tv.version else tv


def get(template_id: str, *, tenant: str | None = None) -> TemplateVersion:
    """The version ``template_id`` names among the tenant's templates (another tenant's section
    of the same name is invisible: :class:`TemplateNotFound`)."""
    owner = _tenant(tenant)
    section, version = parse_template_id(template_id)
    active = _active_version(owner, section)
    if version is None:
        version = active
        if version is None:
            raise TemplateNotFound(f"template {template_id!r} not found")
    item = _version_record(owner, section, version)
    if not item:
        raise TemplateNotFound(f"template {template_id!r} not found")
    return _from_item(item, active)


# Version records this process has read, by (endpoint, table, PK, SK). A version record is
# written once (conditioned on not existing) and never changed or deleted, so a warm render
# instance reads each version once instead of once per batch; only the ACTIVE pointer (what
# ``_latest`` names) is read every time. A missing version is not remembered.
_VERSIONS: dict[tuple[str, str, str, str], dict[str, Any]] = {}
_VERSIONS_MAX = 256


def _version_record(owner: str, section: str, version: int) -> dict[str, Any] | None:
    ddb = aws.client("dynamodb")
    key = (str(ddb.meta.endpoint_url), config.table(), _pk(owner, section), _sk(version))
    found = _VERSIONS.get(key)
    if found is not None:
        return found
    item: dict[str, Any] | None = ddb.get_item(
        TableName=key[1], Key={"PK": {"S": key[2]}, "SK": {"S": key[3]}}).get("Item")
    if item:
        if len(_VERSIONS) >= _VERSIONS_MAX:
            _VERSIONS.clear()
        _VERSIONS[key] = item
    return item


@lru_cache(maxsize=256)
def _html_cached(bucket: str, key: str) -> str:
    # Versions are immutable, so their HTML can be cached for the life of the instance.
    return str(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8"))


def html_of(tv: TemplateVersion) -> str:
    return _html_cached(config.bucket(), tv.html_key)


@lru_cache(maxsize=64)
def _canvas_cached(bucket: str, key: str) -> canvas_model.CanvasTemplate:
    body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return canvas_model.CanvasTemplate.model_validate_json(body)


def canvas_of(tv: TemplateVersion) -> canvas_model.CanvasTemplate:
    """A canvas version's template (validated when it was stored; cached like the HTML)."""
    if tv.kind != "canvas":
        raise ValueError(f"{tv.id} is an {tv.kind} template")
    return _canvas_cached(config.bucket(), tv.html_key)


def list_templates(section: str | None = None, *, tenant: str | None = None) -> list[TemplateVersion]:
    owner = _tenant(tenant)
    ddb = aws.client("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": config.table(), "IndexName": stack_spec().table.gsi_name,
        "KeyConditionExpression": "GSI1PK = :k",
        "ExpressionAttributeValues": {":k": {"S": LIST_KEY.format(tenant=owner)}},
    }
    if section:
        kwargs["KeyConditionExpression"] += " AND begins_with(GSI1SK, :s)"
        kwargs["ExpressionAttributeValues"][":s"] = {"S": f"{section}#"}
    items: list[dict[str, Any]] = []
    while True:
        page = ddb.query(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    actives: dict[str, int | None] = {}
    out = []
    for item in items:
        sec = item["section"]["S"]
        if sec not in actives:
            actives[sec] = _active_version(owner, sec)
        out.append(_from_item(item, actives[sec]))
    return out
