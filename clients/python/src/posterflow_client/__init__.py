"""posterflow-client: a typed client of the posterflow REST API, and webhook verification.

    from posterflow_client import Client
    with Client("https://api.example.com/prod", api_key="...") as pf:
        job = pf.generate_batch("testimonial_latest", items)
        done = pf.wait(job, timeout=300, on_progress=lambda j: print(j.progress))
"""

from posterflow_client import webhooks
from posterflow_client._version import API_VERSION, __version__
from posterflow_client.client import Client, Templates, new_idempotency_key
from posterflow_client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    InvalidPayload,
    InvalidSignature,
    NotFound,
    PayloadTooLarge,
    PosterflowError,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    UnsupportedMediaType,
    UploadFailed,
    ValidationFailed,
    WaitTimeout,
)
from posterflow_client.models import (
    FINAL_STATUSES,
    CancelResult,
    Job,
    JobResult,
    Poster,
    RetryResult,
    Template,
    WebhookSecret,
)
from posterflow_client.retry import NO_RETRIES, RetryPolicy

__all__ = [
    "API_VERSION",
    "FINAL_STATUSES",
    "NO_RETRIES",
    "ApiError",
    "BadRequest",
    "CancelResult",
    "Client",
    "Conflict",
    "InvalidPayload",
    "InvalidSignature",
    "Job",
    "JobResult",
    "NotFound",
    "PayloadTooLarge",
    "Poster",
    "PosterflowError",
    "RateLimited",
    "RetryPolicy",
    "RetryResult",
    "ServerError",
    "Template",
    "Templates",
    "TransportError",
    "Unauthorized",
    "UnsupportedMediaType",
    "UploadFailed",
    "ValidationFailed",
    "WaitTimeout",
    "WebhookSecret",
    "__version__",
    "new_idempotency_key",
    "webhooks",
]
