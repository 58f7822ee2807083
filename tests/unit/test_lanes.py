"""Priority lanes: the priority rule, the lane of a priority, and the lanes in the resource spec."""

from __future__ import annotations

import pytest

from posterflow import config
from posterflow import resources as r
from posterflow.errors import Reason
from posterflow.jobs import lanes


@pytest.mark.parametrize("value", [1, 2, 3, 4, 10, None])
def test_priorities_within_the_range_pass(value: int | None) -> None:
    assert lanes.check_priority(value) == value


@pytest.mark.parametrize("value", [0, 11, -1, 2**70, True, False, 3.0, "3", [1], {"p": 1}])
def test_anything_else_is_refused_naming_the_range(value: object) -> None:
    with pytest.raises(lanes.InvalidPriority) as err:
        lanes.check_priority(value)
    assert err.value.reason is Reason.VALIDATION_ERROR
    assert "from 1 (most urgent) to 10" in err.value.message
    assert err.value.details["min"] == 1 and err.value.details["max"] == 10


@pytest.mark.parametrize(("text", "expected"), [("1", 1), (" 10 ", 10), ("03", 3), (None, None), ("", None),
                                                ("  ", None)])
def test_priority_from_metadata_text(text: str | None, expected: int | None) -> None:
    assert lanes.priority_from_text(text) == expected


@pytest.mark.parametrize("text", ["0", "11", "abc", "1.5", "-1", "+1", "٣", "100", "1" * 5000])
def test_bad_metadata_text_is_refused(text: str) -> None:
    with pytest.raises(lanes.InvalidPriority) as err:
        lanes.priority_from_text(text)
    assert len(str(err.value.details["value"])) <= 20  # a long value is never echoed whole


def test_bullmq_convention_one_to_three_is_urgent() -> None:
    assert [lanes.lane_of(p) for p in (1, 2, 3)] == ["urgent"] * 3
    assert [lanes.lane_of(p) for p in (4, 5, 10, None)] == ["normal"] * 4


def test_queue_keys_of_each_lane() -> None:
    assert lanes.queue_key("render", 1) == "render_urgent"
    assert lanes.queue_key("render", 7) == "render"
    assert lanes.queue_key("render", None) == "render"
    assert lanes.queue_key("crop", 3) == "crop_urgent"
    assert lanes.queue_key("crop", None) == "crop"
    # A function with one queue has it in every lane.
    assert lanes.queue_key("splitter", 1) == "split"
    assert [q.key for q in lanes.lane_queues("render")] == ["render_urgent", "render"]


def test_lane_queue_urls_keep_the_naming_scheme() -> None:
    assert config.QUEUE_URL.env_name(lanes.queue_key("render", 1)) == "POSTERFLOW_RENDER_URGENT_QUEUE_URL"
    assert config.QUEUE_URL.env_name(lanes.queue_key("crop", 2) + "_dlq") == "POSTERFLOW_CROP_URGENT_DLQ_QUEUE_URL"


def test_spec_lanes_each_have_their_own_queue_dlq_and_capacity() -> None:
    spec = r.stack_spec()
    for work in ("render", "crop"):
        urgent, normal = spec.lane(work, "urgent"), spec.lane(work, "normal")
        assert urgent.name != normal.name and urgent.dlq_name != normal.dlq_name
        assert (urgent.consumer, normal.consumer) == (work, work)
        # Reserved = the lanes' maxima together: the normal lane can never use the urgent share.
        assert spec.reserved_concurrency(work) == urgent.max_concurrency + normal.max_concurrency
        assert normal.max_concurrency < spec.reserved_concurrency(work)  # type: ignore[operator]
        # Locally, the function has an instance for every poller of both lanes.
        assert urgent.local_concurrency and normal.local_concurrency
        assert spec.function(work).local_concurrency == urgent.local_concurrency + normal.local_concurrency
        assert urgent.visibility_timeout_s == normal.visibility_timeout_s
    assert spec.reserved_concurrency("api") is None


def test_a_spec_with_half_a_lane_is_refused() -> None:
    spec = r.stack_spec()
    without_urgent = tuple(q for q in spec.queues if q.key != "render_urgent")
    with pytest.raises(ValueError, match="one urgent and one normal"):
        r.StackSpec.model_validate({**spec.model_dump(), "queues": [q.model_dump() for q in without_urgent]})
    functions = [fn.model_dump() | ({"local_concurrency": 1} if fn.key == "crop" else {}) for fn in spec.functions]
    with pytest.raises(ValueError, match="sum of its lanes"):
        r.StackSpec.model_validate({**spec.model_dump(), "functions": functions})
