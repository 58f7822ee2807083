from posterflow import resources as r


def test_every_queue_consumer_is_a_function() -> None:
    spec = r.stack_spec()
    keys = {fn.key for fn in spec.functions}
    for q in spec.queues:
        assert q.consumer in keys


def test_visibility_timeout_covers_consumer_timeout() -> None:
    # Lambda refuses an SQS event source whose visibility timeout is below the function timeout.
    spec = r.stack_spec()
    for q in spec.queues:
        assert q.consumer is not None
        assert q.visibility_timeout_s >= spec.function(q.consumer).timeout_s


def test_function_environment_names_every_queue() -> None:
    spec = r.stack_spec()
    refs = r.ResourceRefs(bucket="b", table="t", queue_urls={"render": "u"}, state_machine_arns={},
                          function_names={"render": "posterflow-render"})
    env = r.function_environment(spec, spec.function("api"), refs)
    assert env["POSTERFLOW_RENDER_QUEUE_URL"] == "u"
    assert env["POSTERFLOW_RENDER_FUNCTION"] == "posterflow-render"
    assert env["POWERTOOLS_SERVICE_NAME"] == "posterflow-api"
