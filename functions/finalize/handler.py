"""fn finalize: the tasks of the finalize state machine (archive, email, webhook, complete, fail)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from posterflow import observability
from posterflow.finalize import workflow

logger = Logger()
tracer = observability.tracer
metrics = observability.function_metrics()


# A Step Functions task input has no Powertools event class: the workflow validates it.
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # Keys go on the function's own logger: library modules log through child loggers, which
    # cannot carry keys of their own.
    logger.append_keys(job_id=event.get("job_id"), finalize_round=event.get("finalize_round"),
                       action=event.get("action"))
    tracer.put_annotation("job_id", str(event.get("job_id")))
    return workflow.handle(event)
