"""What every input kind of the splitter shares with the runner: the items it yields, the
chunk writer it hands them to, and the error that refuses an input as a whole.

A leaf module: the input kinds import it, the runner imports them, so nothing here may import
the runner (the chunk writer reaches an input kind as a :class:`ChunkWriter` argument)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from posterflow import jobs
from posterflow.errors import PosterflowError, Reason

Items = Iterator[tuple[jobs.NewItem, dict[str, Any] | None]]
"""Items in input order, each with its work message (``None``: nothing to queue, e.g. a row
that can never render or a ZIP entry that is not a photo)."""

Settle = Callable[[list[jobs.NewItem]], None]


class SplitFailed(PosterflowError):
    """The whole input is unusable: the job fails with this reason."""

    reason = Reason.INPUT_UNUSABLE


class ChunkWriter(Protocol):
    """Writes and queues ``items`` in checkpointed chunks (``posterflow.split.runner``);
    True when the input is exhausted, False when the invocation paused to continue later.

    ``cursor_of`` names the position after an item (saved on pause); ``settle`` runs after
    each chunk is written and queued, for the items that never reach a worker."""

    def __call__(self, items: Items, queue: str, cursor_of: Callable[[jobs.NewItem], Any],
                 settle: Settle | None = None) -> bool: ...
