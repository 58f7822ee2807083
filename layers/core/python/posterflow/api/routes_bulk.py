"""``POST /api/generate-bulk`` (seed 000): posters from CSV rows or from user profiles.

- ``bulkMethod: "csv"``: ``csvData`` is CSV text (or the rows already parsed: a list of
  objects, or a list of lists with the header first); ``csvColumns`` is seed 000's explicit
  column subset (only those columns fill placeholders). Rows are read with the upload reader,
  so the same rules hold: header names normalised, formula-looking cells kept as data, a bad
  row (short, too long, missing a required column) fails alone with its reason.
- ``bulkMethod: "html"``: ``userIdentifiers`` (``"a,b,c"`` or a list) are looked up at the
  configured profile source (:mod:`posterflow.posters.profiles`); each profile fills one poster and a
  failed look-up fails that item with the reason.

The template is ``template_id`` (``csvTemplate``/``htmlTemplate`` may name one too) or inline
HTML in ``csvTemplate``/``htmlTemplate``, stored once as a template section named after its
content hash, so the workers render it like any other version.
"""

from __future__ import annotations

import csv
import hashlib
import io
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import ConfigDict, Field, model_validator

from posterflow import jobs
from posterflow.api import batch_modes, idempotency
from posterflow.api.errors import ApiError
from posterflow.api.fields import JsonObject, Priority
from posterflow.api.links import job_links
from posterflow.api.poster_requests import MAX_INLINE_ITEMS, OutputOptions, poster_spec
from posterflow.errors import Reason
from posterflow.formats import csvreader
from posterflow.jobs import enqueue
from posterflow.posters import profiles, template_store, templating

router = Router()

# Profile look-ups run inside the API call (bounded, parallel) and must leave time to queue
# the items within API Gateway's 29 s: more identifiers than this go through an upload.
MAX_PROFILE_LOOKUPS = 200
PROFILE_BUDGET_S = 15.0
INLINE_SECTION_PREFIX = "inline-"


class BulkRequest(OutputOptions):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    bulk_method: Literal["csv", "html"] = Field(alias="bulkMethod")
    template_id: str | None = Field(None, min_length=1)
    csv_data: str | list[dict[str, Any]] | list[list[Any]] | None = Field(None, alias="csvData")
    csv_template: str | None = Field(None, alias="csvTemplate")
    csv_columns: list[str] | None = Field(None, alias="csvColumns")
    html_template: str | None = Field(None, alias="htmlTemplate")
    user_identifiers: str | list[str] | None = Field(None, alias="userIdentifiers")
    metadata: JsonObject = Field(default_factory=dict)
    name: str | None = None
    notify_email: str | None = None
    webhook_url: str | None = None
    priority: Priority = None
    merge_pdf: bool = Field(False, alias="mergePdf",
                            description="one merged PDF of the succeeded rows (pdf output only)")

    @model_validator(mode="after")
    def _inputs_present(self) -> BulkRequest:
        if self.bulk_method == "csv" and self.csv_data is None:
            raise ValueError("bulkMethod csv needs csvData")
        if self.bulk_method == "html" and self.user_identifiers is None:
            raise ValueError("bulkMethod html needs userIdentifiers")
        if not (self.template_id or self.csv_template or self.html_template):
            raise ValueError("give template_id, or the template in csvTemplate/htmlTemplate")
        return self


def _template(body: BulkRequest) -> template_store.TemplateVersion:
    """The template id, or inline HTML stored once per distinct content."""
    given = body.template_id or (body.csv_template if body.bulk_method == "csv" else body.html_template)
    given = given or body.csv_template or body.html_template or ""
    if "<" not in given and "{{" not in given:
        return template_store.get(given.strip())
    section = INLINE_SECTION_PREFIX + hashlib.sha256(given.encode()).hexdigest()[:24]
    try:
        return template_store.get(f"{section}_latest")
    except template_store.TemplateNotFound:
        pass
    try:
        return template_store.upload(section, body.name or "inline bulk template", given)
    except templating.TemplateError as exc:
        raise ApiError(Reason.INVALID_TEMPLATE, f"the inline template is not usable: {exc}") from None


def _options(body: BulkRequest) -> OutputOptions:
    """Only the output options travel in each item's spec (not the whole request)."""
    return OutputOptions.model_validate(body.model_dump(include=set(OutputOptions.model_fields)))


def _entity(values: dict[str, Any], index: int) -> str:
    """As the splitter names CSV rows: an id-like column, else the row number."""
    for key in ("entity_id", "id", "username", "user_id"):
        if values.get(key) not in (None, ""):
            return str(values[key])
    for key, value in values.items():
        if key.endswith("_id") and value not in (None, ""):
            return str(value)
    return str(index)


def _csv_text(data: str | list[dict[str, Any]] | list[list[Any]]) -> str:
    """Parsed rows are written back to CSV text so one reader applies one set of rules."""
    if isinstance(data, str):
        return data
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if data and all(isinstance(r, dict) for r in data):
        header = list(dict.fromkeys(str(k) for r in data for k in r))
        writer.writerow(header)
        for r in data:
            writer.writerow(["" if r.get(h) is None else r.get(h) for h in header])  # type: ignore[union-attr]
    elif all(isinstance(r, list) for r in data):
        writer.writerows(data)
    else:
        raise ApiError(Reason.INVALID_CSV, "csvData rows must all be objects or all be lists")
    return buf.getvalue()


# (entity id, spec or None, (error, reason) or None) per row/profile: None spec means the item fails.
Row = tuple[str, dict[str, Any] | None, tuple[str, Reason] | None]


def _csv_rows(body: BulkRequest, tv: template_store.TemplateVersion) -> list[Row]:
    assert body.csv_data is not None
    columns = [templating.normalize_key(c) for c in body.csv_columns] if body.csv_columns else None
    required = [p.name for p in tv.placeholders if p.required]
    if columns is not None:
        # Seed 000: only the listed columns fill placeholders; required ones must be among them.
        unlisted = [c for c in required if templating.normalize_key(c) not in columns]
        if unlisted:
            raise ApiError(Reason.COLUMNS_MISMATCH,
                           f"csvColumns leaves out placeholder(s) the template needs: {', '.join(unlisted)}",
                           {"missing": unlisted})
    try:
        reader = csvreader.CsvReader(io.BytesIO(_csv_text(body.csv_data).encode("utf-8")),
                                     required_columns=required, max_rows=MAX_INLINE_ITEMS)
        read = list(reader)
    except csvreader.CsvRowLimitExceeded as exc:
        raise ApiError(Reason.TOO_MANY_ROWS, f"{exc.message}; upload the CSV with POST /api/uploads instead") from None
    except csvreader.CsvError as exc:
        raise ApiError(Reason.INVALID_CSV, f"csvData is not usable CSV: {exc.message}",
                       {"code": exc.code, "line": exc.line}) from None
    rows: list[Row] = []
    for row in read:
        entity = _entity(row.values, row.number - 1)
        if row.error:
            rows.append((entity, None, (f"row {row.line}: {row.error}", row.error_code or Reason.MALFORMED)))
            continue
        spec = poster_spec(_options(body), tv.id, row.values, entity)
        if columns is not None:
            spec["columns"] = columns
        rows.append((entity, spec, None))
    return rows


def _profile_rows(body: BulkRequest, tv: template_store.TemplateVersion) -> list[Row]:
    assert body.user_identifiers is not None
    identifiers = profiles.parse_identifiers(body.user_identifiers)
    if len(identifiers) > MAX_PROFILE_LOOKUPS:
        raise ApiError(Reason.TOO_MANY_IDENTIFIERS,
                       f"{len(identifiers)} identifiers is over the limit of {MAX_PROFILE_LOOKUPS} per request; "
                       "send them in several requests, or upload a CSV of the profile data with POST /api/uploads")
    source = profiles.ProfileSource.from_env()  # NotConfigured: profile_source_not_configured
    found = profiles.fetch_many(source, identifiers, budget_s=PROFILE_BUDGET_S)
    rows: list[Row] = []
    for ident, profile in zip(identifiers, found, strict=True):
        if isinstance(profile, profiles.ProfileError):
            rows.append((ident, None, (f"profile look-up failed: {profile.message}", profile.reason)))
        else:
            rows.append((ident, poster_spec(_options(body), tv.id, profile, ident), None))
    return rows


def submit_bulk(body: BulkRequest) -> tuple[dict[str, Any], int]:
    tv = _template(body)
    batch_modes.check_merge_pdf(body.merge_pdf, body.format, tv)
    rows = _csv_rows(body, tv) if body.bulk_method == "csv" else _profile_rows(body, tv)
    if not rows:
        raise ApiError(Reason.NO_ROWS, "the request holds no rows to render (only a header or blank lines)")
    job = jobs.create_job("poster", total=len(rows), template_id=tv.id, template_section=tv.section,
                          template_version=tv.version, notify_email=body.notify_email, webhook_url=body.webhook_url,
                          metadata={**body.metadata, "bulk_method": body.bulk_method}, name=body.name,
                          priority=body.priority)
    good: list[tuple[int, dict[str, Any], str | None]] = [
        (i, spec, entity) for i, (entity, spec, _) in enumerate(rows) if spec is not None]
    bad = [(i, entity, error or ("unusable row", Reason.MALFORMED))
           for i, (entity, spec, error) in enumerate(rows) if spec is None]
    # Bad rows are items too (nothing silently dropped): written, then failed with their reason.
    jobs.put_items(job.job_id, (jobs.NewItem(item_id=i, entity_id=entity, input={"error": error[0]})
                                for i, entity, error in bad))
    if body.merge_pdf:
        batch_modes.mark_merge_pdf(job)
    enqueue.submit_posters(job.job_id, good, priority=job.priority)
    counted = [jobs.ItemOutcome(item_id=i, status=jobs.ItemStatus.FAILED, error=error[0], error_code=error[1])
               for i, _, error in bad
               if jobs.finish_item(job.job_id, i, status="failed", error=error[0], error_code=error[1]).counted]
    jobs.log_failed_items(job.job_id, counted, source="bulk rows")
    jobs.add_log(job.job_id, "INFO", f"bulk {body.bulk_method}: queued {len(good)} poster(s), "
                 f"{len(bad)} row(s) failed before rendering", {"template_id": tv.id})
    n = len(rows)
    return {"success": True, "job_id": job.job_id, "total_items": n, "queued_items": len(good),
            "failed_items": len(bad), "template_id": tv.id,
            "message": f"Bulk generation queued with {n} items. Use the WebSocket or the status endpoint "
                       "to track progress.", **job_links(job)}, 202


@router.post("/api/generate-bulk")
def generate_bulk(body: Annotated[BulkRequest, Body()]) -> tuple[dict[str, Any], int]:
    return idempotency.once("generate-bulk", body, lambda: submit_bulk(body))
