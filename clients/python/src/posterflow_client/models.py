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


class Job(_Model):
    """A job: the answer of a job-creating call (``job_id`` and links), or its status
    (counters and, from :meth:`Client.job`, every result)."""

    job_id: str
    kind: str | None = None
    name: str | None = None
    status: str | None = None
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
    status_endpoint: str | None = None
    websocket_url: str | None = None
    token: str | None = None
    message: str | None = None
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
    def urls(self) -> list[str]:
        """The URLs of the succeeded results, in result order."""
        return [r.url for r in self.results if r.url]


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


class Template(_Model):
    """One template version; ``template_id`` is ``<section>_v<N>``."""

    template_id: str
    section: str
    version: int
    name: str
    placeholders: list[dict[str, Any]] = Field(default_factory=list)
    width: int | None = None
    height: int | None = None
    size: str | None = None
    format: str | None = None
    javascript: bool = False
    is_active: bool = False
    created_at: str | None = None
    html_content: str | None = None


class WebhookSecret(_Model):
    """``GET /api/webhook-secret``: the caller's signing secret and the scheme."""

    tenant: str | None = None
    secret: str
    header: str = "X-Posterflow-Signature"
    scheme: str | None = None
