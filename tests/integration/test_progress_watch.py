"""``posterflow watch``'s library: a progress bar fed by the socket, REST as the fallback."""

from __future__ import annotations

import io
from typing import Any

from posterflow_local.watch import watch
from tests.integration.test_progress_websocket import _batch


def test_watch_draws_progress_and_returns_the_final_job(cloud: Any) -> None:
    job = _batch(cloud, 12)
    out = io.StringIO()
    final = watch(cloud.gateway.rest_url, job["websocket_url"], job["job_id"], job["token"], out=out, timeout=180)
    assert final["status"] == "completed" and final["processed_items"] == 12 and final["success_count"] == 12
    text = out.getvalue()
    assert "100.0% 12/12" in text and f"job {job['job_id']} completed" in text
    assert "live progress unavailable" not in text


def test_watch_falls_back_to_the_api_when_the_socket_is_refused(cloud: Any) -> None:
    job = _batch(cloud, 3)
    out = io.StringIO()
    final = watch(cloud.gateway.rest_url, cloud.gateway.ws_url, job["job_id"], "wrong-token", out=out, timeout=180)
    assert final["status"] == "completed" and final["processed_items"] == 3
    assert "live progress unavailable" in out.getvalue()
