"""Live progress over the WebSocket API (docs/architecture.md, progress events).

- :mod:`~posterflow.progress.routes`: ``$connect`` (job token check), ``subscribe``, ``ping``,
  ``$disconnect``.
- :mod:`~posterflow.progress.broadcast`: DynamoDB stream batches → frames to subscribers.
- :mod:`~posterflow.progress.coalesce`: at most ~4 frame groups a second per job, in order.
- :mod:`~posterflow.progress.connections`: connections and subscriptions in the jobs table.
- :mod:`~posterflow.progress.events`: the frames themselves.
"""

from posterflow.progress.broadcast import BatchReport, handle_records, heartbeat_all
from posterflow.progress.routes import handle as handle_route

__all__ = ["BatchReport", "handle_records", "handle_route", "heartbeat_all"]
