"""A faster receive/delete path for moto's standard SQS queues.

moto 5.2 makes every receive and delete O(queue length) with a large constant: the
``Queue.messages`` property rebuilds a filtered list on each access, ``receive_message``
deep-copies each message and re-reads the queue attributes per message, and
``Queue.delete_message`` scans every message's receipt-handle history twice and rebuilds the
list for each handle. With 10,000 queued messages a receive took ~0.4 s.

This module keeps moto's semantics (visibility timeout, receive counts, redrive to the DLQ,
retention, long polling) and replaces only the data-structure work:

- receipt handles are indexed, so a delete is a dict lookup (a handle the index does not
  know is looked for as moto does);
- deletes are lazy: a deleted message is flagged and the list is compacted in one pass at
  the next receive, so a batch of 10 deletes costs one cheap pass, not 20 full scans
  (ChangeMessageVisibility refuses a deleted message's handle, and PurgeQueue forgets the
  handles, as moto does);
- a receive walks the list only until it has ``count`` messages and makes shallow copies;
- receives on one queue are serialised, so two pollers never get the same message while it
  is invisible (moto's own path has no lock).

FIFO queues keep moto's original code. Removing the patch compacts each queue it touched, so
moto's own code finds no message that was deleted here. Checked by
tests/integration/test_local_patches_sqs.py: the same calls on a queue with the patch and on
one without give the same answers.
"""

from __future__ import annotations

import copy
import threading
import weakref
from typing import Any

from moto.core.utils import unix_time, unix_time_millis
from moto.sqs import models as sqs_models
from moto.sqs.exceptions import ReceiptHandleIsInvalid

from posterflow_local.patches._patch import Patch, Replacement

_Queue = sqs_models.Queue
_Backend = sqs_models.SQSBackend
_Message = sqs_models.Message

_original_receive = _Backend.receive_message
_original_queue_delete = _Queue.delete_message
_original_change_visibility = _Backend.change_message_visibility
_original_purge = _Backend.purge_queue
# Queues holding this module's state, so removing the patch can hand them back to moto.
_tracked: weakref.WeakSet[Any] = weakref.WeakSet()


def _state(queue: Any) -> dict[str, Any]:
    st = queue.__dict__.get("_pf_state")
    if st is None:
        st = {"handles": {}, "lock": threading.Lock(), "dirty": 0}
        queue.__dict__["_pf_state"] = st
        _tracked.add(queue)
    return st


def _compact(queue: Any, st: dict[str, Any]) -> None:
    if st["dirty"]:
        queue._messages = [m for m in queue._messages if not m.__dict__.get("_pf_deleted")]
        st["dirty"] = 0


def _messages(self: Any) -> list[Any]:
    now = unix_time_millis()
    return [m for m in self._messages
            if now > m.visible_at and now >= m.delayed_until and not m.__dict__.get("_pf_deleted")]


def _counts(queue: Any) -> tuple[int, int, int]:
    """(visible, not visible, delayed) in one pass over the queue, reused for 100 ms.

    SQS's approximate counts are eventually consistent on AWS too; moto recomputed them
    with datetime arithmetic per message on every SendMessage (it reads ``attributes``)."""
    st = _state(queue)
    now_s = unix_time()
    cached = st.get("counts")
    if cached is not None and now_s - cached[0] < 0.1:
        return cached[1]
    now = now_s * 1000
    visible = not_visible = delayed = 0
    for m in queue._messages:
        if m.__dict__.get("_pf_deleted"):
            continue
        if now < m.delayed_until:
            delayed += 1
        elif now > m.visible_at:
            visible += 1
        else:
            not_visible += 1
    st["counts"] = (now_s, (visible, not_visible, delayed))
    return visible, not_visible, delayed


def _visible_count(self: Any) -> int:
    return _counts(self)[0]


def _not_visible(self: Any) -> int:
    return _counts(self)[1]


def _delayed(self: Any) -> int:
    return _counts(self)[2]


def _find(queue: Any, receipt_handle: str) -> Any:
    # moto's own look-up, for a handle the index does not know: one that is invalid, or one
    # received while the patch was not installed.
    return next((m for m in queue._messages
                 if not m.__dict__.get("_pf_deleted") and m.had_receipt_handle(receipt_handle)), None)


def _change_message_visibility(self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int) -> None:
    # A deleted message stays in ``_messages`` until the next compaction, where moto's own
    # look-up would find it; moto removed it at once, so its handles are invalid.
    if receipt_handle in self.get_queue(queue_name).deleted_messages:
        raise ReceiptHandleIsInvalid()
    _original_change_visibility(self, queue_name, receipt_handle, visibility_timeout)


def _purge_queue(self: Any, queue_name: str) -> None:
    queue = self.get_queue(queue_name)
    st = _state(queue)
    with st["lock"]:
        _original_purge(self, queue_name)
        # The purged messages' handles are invalid now, as with moto's own delete.
        st["handles"].clear()
        st["dirty"] = 0
        st.pop("counts", None)


def _queue_delete_message(self: Any, receipt_handle: str) -> None:
    if self.fifo_queue:
        _original_queue_delete(self, receipt_handle)
        return
    st = _state(self)
    with st["lock"]:
        if receipt_handle in self.deleted_messages:
            return
        message = st["handles"].get(receipt_handle) or _find(self, receipt_handle)
        if message is None or message.__dict__.get("_pf_deleted"):
            raise ReceiptHandleIsInvalid()
        message.__dict__["_pf_deleted"] = True
        self.pending_messages.discard(message)
        handles = message.all_receipt_handles
        self.deleted_messages.update(handles)
        for h in handles:
            st["handles"].pop(h, None)
        st["dirty"] += 1


def _receive_message(
    self: Any,
    queue_name: str,
    count: int,
    wait_seconds_timeout: int,
    visibility_timeout: int,
    message_attribute_names: list[str] | None = None,
) -> list[Any]:
    queue = self.get_queue(queue_name)
    if queue.fifo_queue:
        return _original_receive(self, queue_name, count, wait_seconds_timeout, visibility_timeout,
                                 message_attribute_names)
    names = message_attribute_names or []
    st = _state(queue)
    polling_end = unix_time() + wait_seconds_timeout
    retention = int(queue.message_retention_period)
    while True:
        result: list[Any] = []
        with st["lock"]:
            _compact(queue, st)
            now = unix_time()
            now_ms = now * 1000
            to_dlq: list[Any] = []
            for message in queue._messages:
                if now_ms <= message.visible_at or now_ms < message.delayed_until:
                    continue
                if message in queue.pending_messages:
                    # Visible again although received: the consumer timed out.
                    queue.pending_messages.discard(message)
                if (
                    queue.dead_letter_queue is not None
                    and queue.redrive_policy
                    and message.approximate_receive_count >= int(queue.redrive_policy["maxReceiveCount"])
                ):
                    to_dlq.append(message)
                    continue
                if retention + message.sent_timestamp / 1000 <= now:
                    continue
                queue.pending_messages.add(message)
                message.mark_received(visibility_timeout=visibility_timeout)
                st["handles"][message.receipt_handle] = message
                message_copy = copy.copy(message)
                sqs_models._filter_message_attributes(message_copy, names)
                result.append(message_copy)
                if len(result) >= count:
                    break
            if to_dlq:
                moved = set(map(id, to_dlq))
                queue._messages = [m for m in queue._messages if id(m) not in moved]
                for message in to_dlq:
                    for h in message.all_receipt_handles:
                        st["handles"].pop(h, None)
        for message in to_dlq:
            queue.dead_letter_queue.add_message(message)
        if result or not wait_seconds_timeout or unix_time() > polling_end:
            return result
        queue.wait_for_messages(1)


def _hand_back() -> None:
    """Drop the lazily deleted messages and this module's state: moto's code reads ``_messages``."""
    for queue in list(_tracked):
        st = queue.__dict__.get("_pf_state")
        if st is None:
            continue
        with st["lock"]:
            _compact(queue, st)
            del queue.__dict__["_pf_state"]
    _tracked.clear()


PATCH = Patch("sqs", [
    Replacement(_Queue, "messages", property(_messages)),
    Replacement(_Queue, "approximate_number_of_messages", property(_visible_count)),
    Replacement(_Queue, "approximate_number_of_messages_not_visible", property(_not_visible)),
    Replacement(_Queue, "approximate_number_of_messages_delayed", property(_delayed)),
    Replacement(_Queue, "delete_message", _queue_delete_message),
    Replacement(_Backend, "receive_message", _receive_message),
    Replacement(_Backend, "change_message_visibility", _change_message_visibility),
    Replacement(_Backend, "purge_queue", _purge_queue),
], before_remove=_hand_back)
