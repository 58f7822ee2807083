"""What the API answers, as pydantic models. Every model keeps fields it does not know
(``extra="allow"``: a newer server's additions are read, not refused) and reads them as
attributes or through ``model_extra``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Job statuses the API reports; a job in one of the last four will not change again.
QUEUED = "queued"
PROCESSING = "processing"
COMPLETED = "completed"
COMPLETED_WITH_ERRORS = "completed_with_errors"
FAILED = "failed"
CANCELLED = "cancelled"
FINAL_STATUSES = frozenset({COMPLETED, COMPLETED_WITH_ERRORS, FAILED, CANCELLED})


class _Model(BaseModel):
    # Numbers where a string is expected (an id, a name) are read as text, not refused.
    model_config = ConfigDict(extra="allow", populate_by_name=True, coerce_numbers_to_str=True)


class Poster(_Model):
    """``POST /api/generate``: one poster rendered synchronously."""

    url: str
    template_version_used: int | None = None
    template_name: str | None = None
    template_id: str | None = None
    generation_time_ms: float | None = None
    content_type: str | None = None
    key: str | None = None
    blocked_urls: list[str] = Field(default_factory=list)
    success: bool = True


class JobResult(_Model):
    """One item of a job: ``url`` (a presigned GET) once it succeeded."""

    item_id: int | str | None = Field(None, description="the item's index in the job")
    entity_id: str | None = None
    url: str | None = None
    key: str | None = None
    status: str | None = None
    generation_time_ms: float | None = None
    error: Any = None
    error_code: str | None = Field(None, description="the fixed reason an item failed or was skipped")


class Job(_Model):
    """A job: the answer of a job-creating call (``job_id`` and links), or its status
    (counters and, from :meth:`Client.job`, every result)."""

    job_id: str
    kind: str | None = None
    name: str | None = None
    project_id: str | None = None
    status: str | None = None
    priority: int | None = Field(None, description="1 (most urgent) to 10; None: the normal lane")
    lane: str | None = Field(None, description="urgent (priority 1-3) or normal")
    template_id: str | None = None
    template_section: str | None = None
    template_version: int | None = None
    total_items: int | None = None
    processed_items: int = 0
    success_count: int = 0
    failure_count: int = 0
    skipped_count: int = 0
    cancelled_count: int = 0
    progress: float | None = None
    created_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    error: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    archive_url: str | None = None
    # A merge_pdf batch, once finalize wrote its merged PDF: one URL per part (of at most
    # POSTERFLOW_MERGED_PDF_PART_PAGES pages); merged_pdf_url when it is one file.
    merge_pdf: bool = False
    merged_pdf_url: str | None = None
    merged_pdf_urls: list[str] = Field(default_factory=list)
    merged_pdf_pages: int | None = None
    status_endpoint: str | None = None
    sse_endpoint: str | None = None
    websocket_url: str | None = None
    token: str | None = None
    message: str | None = None
    # The answer of generate_batch: its mode; inline True when the batch was rendered while the
    # call waited (200: every result is here); inline False and queued when it went on async.
    mode: str | None = None
    inline: bool | None = None
    queued: int | None = None
    # The answer of generate_bulk: rows queued, and rows failed before rendering.
    queued_items: int | None = None
    failed_items: int | None = None
    results: list[JobResult] = Field(default_factory=list)
    next: str | None = None
    # Only on the answer of POST /api/uploads (the job waits for its file).
    upload_url: str | None = None
    upload_headers: dict[str, str] = Field(default_factory=dict, alias="headers")
    key: str | None = None

    @property
    def is_final(self) -> bool:
        """Whether the job will not change any more (completed, with errors, failed, cancelled)."""
        return self.status in FINAL_STATUSES

    @property
    def is_rendered(self) -> bool:
        """Whether every item is done: the job is final, or it is an inline batch answered with
        all its results (its ``status`` may still read ``processing`` while finalize sends the
        mail and webhook)."""
        return self.is_final or (bool(self.inline) and self.total_items is not None
                                 and len(self.results) >= self.total_items and not self.next)

    @property
    def urls(self) -> list[str]:
        """The URLs of the succeeded results, in result order."""
        return [r.url for r in self.results if r.url]


class ZipUpload(Job):
    """``POST /api/batch/upload-zip``: the crop job of a ZIP, with the counts read from the ZIP's
    central directory before the answer (``image_count`` photos, ``queued`` of them to crop,
    ``skipped``/``refused`` entries and their ``reasons``)."""

    batch_id: str | None = Field(None, alias="batchId")
    image_count: int | None = Field(None, alias="imageCount")
    entries: int | None = None
    photos: int | None = None
    skipped: int | None = None
    refused: int | None = None
    reasons: dict[str, int] = Field(default_factory=dict)
    results_endpoint: str | None = None


class BatchProgress(_Model):
    processed: int = 0
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0


class BatchStatus(_Model):
    """``GET /api/batch/status/{id}``: seed 004's ``batch`` object (camelCase on the wire)."""

    batch_id: str = Field(alias="batchId")
    job_id: str | None = Field(None, alias="jobId")
    kind: str | None = None
    status: str | None = None
    priority: int | None = None
    image_count: int | None = Field(None, alias="imageCount")
    progress: BatchProgress = Field(default_factory=BatchProgress)
    progress_percent: float | None = Field(None, alias="progressPercent")
    created_at: str | None = Field(None, alias="createdAt")
    completed_at: str | None = Field(None, alias="completedAt")
    error: Any = None
    archive_url: str | None = Field(None, alias="archiveUrl")
    results_endpoint: str | None = Field(None, alias="resultsEndpoint")

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class CancelResult(_Model):
    job_id: str
    items_cancelled: int = 0
    items_remaining: bool = False
    job: Job | None = None


class RetryResult(_Model):
    job_id: str
    retried: int = 0
    status_endpoint: str | None = None
    websocket_url: str | None = None
    token: str | None = None


class VariableMapping(_Model):
    """One field of a canvas template: the top-level object at ``index`` takes the data's
    ``field`` as its text (``type`` ``text``), an image source (``image``) or a QR code (``qr``)."""

    index: int
    field: str
    type: str = "text"


class Template(_Model):
    """One template version; ``template_id`` is ``<section>_v<N>``. ``kind`` is ``html``
    (``html_content``) or ``canvas`` (``canvas_json``, ``variable_mappings``); the source is in
    the answer of :meth:`Templates.get` only."""

    template_id: str
    section: str
    version: int
    name: str
    kind: str = "html"
    placeholders: list[dict[str, Any]] = Field(default_factory=list)
    width: int | None = None
    height: int | None = None
    size: str | None = None
    format: str | None = None
    javascript: bool = False
    is_active: bool = False
    created_at: str | None = None
    bleed_mm: float | None = None
    html_content: str | None = None
    canvas_json: dict[str, Any] | str | None = None
    variable_mappings: list[VariableMapping] = Field(default_factory=list)


class WebhookSecret(_Model):
    """``GET /api/webhook-secret``: the caller's signing secret and the scheme."""

    tenant: str | None = None
    secret: str
    header: str = "X-Posterflow-Signature"
    scheme: str | None = None


class LogLine(_Model):
    """One line of ``GET /api/jobs/{id}/logs`` (newest first)."""

    timestamp: str | None = None
    level: str | None = None
    message: str | None = None
    details: Any = None


class Timing(_Model):
    """Durations in milliseconds (``p50``/``p95`` within 10% of the exact value)."""

    avg: float | None = None
    min: float | None = None
    max: float | None = None
    p50: float | None = None
    p95: float | None = None


class _Counts(_Model):
    jobs: int = 0
    items: int = 0
    succeeded: int = 0
    failed: int = 0
    avg_job_duration_ms: float | None = None


class VersionStats(_Counts):
    version: int
    generation_ms: Timing = Field(default_factory=Timing)


class SectionStats(_Counts):
    """One template section over the range, with its versions (newest first)."""

    section: str
    generation_ms: Timing = Field(default_factory=Timing)
    versions: list[VersionStats] = Field(default_factory=list)


class TemplateStats(_Model):
    """``GET /api/stats/templates``; ``truncated``: more sections exist (ask for one ``section``)."""

    since: str
    until: str
    sections: list[SectionStats] = Field(default_factory=list)
    truncated: bool = False


class CropTotals(_Counts):
    faces_found: int = 0
    crop_ms: Timing = Field(default_factory=Timing)


class CropStats(_Model):
    """``GET /api/stats/crops``."""

    since: str
    until: str
    crops: CropTotals = Field(default_factory=CropTotals)


class StreamEvent(_Model):
    """One Server-Sent Event of a job stream: ``event`` (``connected``, ``status``, ``progress``,
    ``poster_completed``, ``item_completed``, ``log``, ``job_completed``, ``job_failed`` …),
    ``id`` (what a resume sends back as ``Last-Event-ID``) and ``data``, the parsed JSON frame
    (the text itself when it is not JSON)."""

    event: str = "message"
    id: str | None = None
    data: Any = None
    raw: str = ""

    @property
    def is_end(self) -> bool:
        """``job_completed`` or ``job_failed``: the stream's last event."""
        return self.event in END_EVENTS


END_EVENTS = frozenset({"job_completed", "job_failed"})
