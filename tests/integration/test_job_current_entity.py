"""``current_entity`` on the job status (seed 002's "current recipient being processed"), on the
local cloud: the counting write that lands items stores the latest one's entity on the job
record, so ``GET /api/jobs/{id}`` and ``/api/templates/job/{id}`` show it without another read."""

from __future__ import annotations

from typing import Any

from posterflow import jobs
from posterflow.errors import Reason
from posterflow.posters import worker
from posterflow.posters.errors import PosterError
from posterflow.posters.pipeline import PosterOutput, PosterSpec, PosterWork
from tests.integration.helpers import api, upload_card_template, wait_for

TEMPLATE = "testimonial_latest"


def _work(job: jobs.Job, item_id: int, entity: str | None) -> PosterWork:
    spec = PosterSpec(template_id=TEMPLATE, custom_data={"name": str(item_id)}, entity_id=entity)
    return PosterWork(spec=spec, job_id=job.job_id, item_id=item_id, tenant=job.tenant)


def _output(job: jobs.Job, item_id: int) -> PosterOutput:
    return PosterOutput(key=f"outputs/default/{job.job_id}/{item_id}.png", content_type="image/png", bytes=10,
                        generation_time_ms=5, template_id=TEMPLATE, template_version_used=1,
                        template_name="Testimonial", width=10, height=10)


def _statuses(cloud: Any, job_id: str) -> list[Any]:
    out = []
    for path in (f"/api/jobs/{job_id}", f"/api/templates/job/{job_id}"):
        status, body, _ = api(cloud, "GET", path)
        assert status == 200, body
        out.append(body["current_entity"])
    return out


def test_status_names_the_entity_of_the_latest_item_to_land(cloud: Any) -> None:
    job = jobs.create_job("poster", 4, template_id=TEMPLATE)
    jobs.put_items(job.job_id, [jobs.NewItem(item_id=i, entity_id=f"r{i}", input={}) for i in range(4)])
    assert _statuses(cloud, job.job_id) == [None, None]  # nothing landed yet

    # The render worker's recording path: one counting write for the batch, in message order;
    # a failed item has landed too.
    failed = PosterError(Reason.MISSING_PLACEHOLDERS, "missing placeholders: name")
    assert worker.record_outcomes([_work(job, 0, "r0"), _work(job, 2, "r2")], ["m0", "m2"],
                                  [_output(job, 0), failed]) == []
    assert jobs.get_job(job.job_id).current_entity == "r2"
    assert _statuses(cloud, job.job_id) == ["r2", "r2"]

    # An item without an entity leaves the last one named.
    assert worker.record_outcomes([_work(job, 1, None)], ["m1"], [_output(job, 1)]) == []
    assert _statuses(cloud, job.job_id) == ["r2", "r2"]

    # Once the job has ended the status names no current entity.
    status, body, _ = api(cloud, "POST", f"/api/jobs/{job.job_id}/cancel")
    assert status == 200, body
    assert _statuses(cloud, job.job_id) == [None, None]


def test_a_rendered_batch_stores_its_last_entity(cloud: Any) -> None:
    template_id = upload_card_template(cloud, "entity", "<div>{{ name }}</div>")
    items = [{"entity_id": f"p{i}", "name": f"N{i}"} for i in range(3)]
    status, body, _ = api(cloud, "POST", "/api/generate-batch", {"template_id": template_id, "items": items})
    assert status == 202, body

    def ended() -> jobs.Job | None:
        found = jobs.get_job(body["job_id"])
        return found if found.is_final else None

    job = wait_for(ended, timeout=90, interval=0.2, what="the batch to finish")
    assert job.current_entity in {"p0", "p1", "p2"}
    assert _statuses(cloud, job.job_id) == [None, None]
