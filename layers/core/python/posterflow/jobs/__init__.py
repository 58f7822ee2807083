"""Job state in DynamoDB (single table, docs/architecture.md): jobs, items with exactly-once counters,
logs, the finalize trigger, cancel / retry / stall sweep.

Everything a function needs is importable from here::

    from posterflow import jobs
    job = jobs.create_job("poster", total=3, template_id="testimonial_latest")
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=i, entity_id=..., input=...) for i in ...])
    outcome = jobs.finish_item(job.job_id, 0, status="succeeded", output_key="outputs/...")
"""

from posterflow.jobs.counting import (
    finish_batch,
    finish_item,
    finish_items,
    set_total,
)
from posterflow.jobs.errors import (
    InvalidCursor,
    ItemNotFound,
    ItemTooLarge,
    JobError,
    JobNotFound,
    JobStateConflict,
)
from posterflow.jobs.finalize_trigger import (
    FINALIZE_HEAL_AFTER_S,
    check_completion,
    complete_job,
)
from posterflow.jobs.logs import LEVELS as LOG_LEVELS
from posterflow.jobs.logs import add_log, list_logs, log_failed_items
from posterflow.jobs.models import (
    ACTIVE_JOB_STATUSES,
    ALLOWED_FROM,
    FINAL_JOB_STATUSES,
    TERMINAL_ITEM_STATUSES,
    CancelOutcome,
    FinishOutcome,
    FinishResult,
    Item,
    ItemOutcome,
    ItemStatus,
    Job,
    JobKind,
    JobLog,
    JobStatus,
    NewItem,
    TotalSet,
    finalize_execution_name,
)
from posterflow.jobs.operations import (
    cancel_job,
    fail_job,
    retry_failed,
    sweep_stalled,
)
from posterflow.jobs.store import (
    MAX_INLINE_INPUT_BYTES,
    count_items,
    create_job,
    find_job,
    get_item,
    get_job,
    is_cancelled,
    iter_items,
    list_active_jobs,
    list_items,
    list_jobs,
    owned_job,
    put_items,
    set_status,
    touch,
)

__all__ = [
    "ACTIVE_JOB_STATUSES",
    "ALLOWED_FROM",
    "FINALIZE_HEAL_AFTER_S",
    "FINAL_JOB_STATUSES",
    "LOG_LEVELS",
    "MAX_INLINE_INPUT_BYTES",
    "TERMINAL_ITEM_STATUSES",
    "CancelOutcome",
    "FinishOutcome",
    "FinishResult",
    "InvalidCursor",
    "Item",
    "ItemNotFound",
    "ItemOutcome",
    "ItemStatus",
    "ItemTooLarge",
    "Job",
    "JobError",
    "JobKind",
    "JobLog",
    "JobNotFound",
    "JobStateConflict",
    "JobStatus",
    "NewItem",
    "TotalSet",
    "add_log",
    "cancel_job",
    "check_completion",
    "complete_job",
    "count_items",
    "create_job",
    "fail_job",
    "finalize_execution_name",
    "find_job",
    "finish_batch",
    "finish_item",
    "finish_items",
    "get_item",
    "get_job",
    "is_cancelled",
    "iter_items",
    "list_active_jobs",
    "list_items",
    "list_jobs",
    "list_logs",
    "log_failed_items",
    "owned_job",
    "put_items",
    "retry_failed",
    "set_status",
    "set_total",
    "sweep_stalled",
    "touch",
]
