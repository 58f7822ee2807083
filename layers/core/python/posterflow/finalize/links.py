"""Links that outlive the function that makes them.

The email carries ``GET /api/jobs/{id}/download?token=…`` rather than a presigned S3 URL: a URL
presigned with a Lambda role's credentials dies with the role session (hours), while the
HMAC token is checked by the API for as long as its own expiry says (7 days by default).
"""

from __future__ import annotations

import time
from urllib.parse import quote

from posterflow import config, tokens


def download_url(job_id: str, *, ttl_s: int = tokens.DOWNLOAD_TTL_S, now: float | None = None,
                 part: int | None = None) -> str:
    """The results archive's link; ``part``: that part of the job's merged PDF (same token)."""
    token = tokens.download_token(job_id, ttl_s=ttl_s, now=now)
    url = f"{config.api_url().rstrip('/')}/api/jobs/{quote(job_id, safe='')}/download?token={quote(token, safe='')}"
    return url + (f"&part={part}" if part is not None else "")


def status_url(job_id: str) -> str:
    return f"{config.api_url().rstrip('/')}/api/jobs/{quote(job_id, safe='')}"


def expiry_text(ttl_s: int = tokens.DOWNLOAD_TTL_S, now: float | None = None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime((time.time() if now is None else now) + ttl_s))
