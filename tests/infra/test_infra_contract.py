"""One source of truth: the CDK template, the resource spec and the local cloud agree.

Each setting is read three ways (from the spec, from the synthesized template, from the
embedded AWS after ``provision``) into the same shape, and the three must be equal.
"""

from __future__ import annotations

import json
from typing import Any

from infra_helpers import Synth
from template_views import function_names, function_props, logical_id_by_prop, queue_names, ref_target, resources

from posterflow import aws
from posterflow import resources as r
from posterflow_local.provision import function_arn, render_definition

SPEC = r.stack_spec()
ARN_OF = {fn.key: function_arn(fn.name) for fn in SPEC.functions}

# ---- queues ------------------------------------------------------------------------------


def queues_from_spec() -> dict[str, dict[str, Any]]:
    return {q.name: {"visibility": q.visibility_timeout_s, "retention": q.retention_s,
                     "max_receive_count": q.max_receive_count, "dlq": q.dlq_name,
                     "dlq_retention": q.dlq_retention_s} for q in SPEC.queues}


def queues_from_template(t: dict[str, Any]) -> dict[str, dict[str, Any]]:
    names = queue_names(t)
    props = {lid: res["Properties"] for lid, res in resources(t, "AWS::SQS::Queue").items()}
    out = {}
    for lid, p in props.items():
        if "RedrivePolicy" not in p:
            continue
        dlq_lid = ref_target(p["RedrivePolicy"]["deadLetterTargetArn"])
        out[names[lid]] = {"visibility": p["VisibilityTimeout"], "retention": p["MessageRetentionPeriod"],
                           "max_receive_count": p["RedrivePolicy"]["maxReceiveCount"], "dlq": names[dlq_lid],
                           "dlq_retention": props[dlq_lid]["MessageRetentionPeriod"]}
    return out


def queues_from_local(refs: r.ResourceRefs) -> dict[str, dict[str, Any]]:
    sqs = aws.client("sqs")

    def attrs(url: str) -> dict[str, str]:
        return dict(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])

    out = {}
    for q in SPEC.queues:
        a = attrs(refs.queue_urls[q.key])
        redrive = json.loads(a["RedrivePolicy"])
        dlq = attrs(refs.queue_urls[f"{q.key}_dlq"])
        out[a["QueueArn"].rsplit(":", 1)[1]] = {
            "visibility": int(a["VisibilityTimeout"]), "retention": int(a["MessageRetentionPeriod"]),
            "max_receive_count": int(redrive["maxReceiveCount"]),
            "dlq": redrive["deadLetterTargetArn"].rsplit(":", 1)[1],
            "dlq_retention": int(dlq["MessageRetentionPeriod"])}
    return out


def test_queues_agree(synth: Synth, aws_stack: r.ResourceRefs) -> None:
    expected = queues_from_spec()
    assert queues_from_template(synth.json) == expected
    assert queues_from_local(aws_stack) == expected


# ---- table -------------------------------------------------------------------------------


def table_from_spec() -> dict[str, Any]:
    t = SPEC.table
    return {"name": t.name, "keys": [t.partition_key, t.sort_key], "billing": "PAY_PER_REQUEST",
            "gsi": {t.gsi_name: [t.gsi_partition_key, t.gsi_sort_key]}, "projection": "ALL",
            "ttl": t.ttl_attribute, "stream": t.stream_view}


def _keys(schema: list[dict[str, str]]) -> list[str]:
    return [k["AttributeName"] for k in sorted(schema, key=lambda k: k["KeyType"] != "HASH")]


def table_from_template(tpl: dict[str, Any]) -> dict[str, Any]:
    (p,) = [x["Properties"] for x in resources(tpl, "AWS::DynamoDB::Table").values()]
    (projection,) = {g["Projection"]["ProjectionType"] for g in p["GlobalSecondaryIndexes"]}
    return {"name": p["TableName"], "keys": _keys(p["KeySchema"]), "billing": p["BillingMode"],
            "gsi": {g["IndexName"]: _keys(g["KeySchema"]) for g in p["GlobalSecondaryIndexes"]},
            "projection": projection, "ttl": p["TimeToLiveSpecification"]["AttributeName"],
            "stream": p["StreamSpecification"]["StreamViewType"]}


def table_from_local() -> dict[str, Any]:
    ddb = aws.client("dynamodb")
    d = ddb.describe_table(TableName=SPEC.table.name)["Table"]
    ttl = ddb.describe_time_to_live(TableName=SPEC.table.name)["TimeToLiveDescription"]
    (projection,) = {g["Projection"]["ProjectionType"] for g in d["GlobalSecondaryIndexes"]}
    return {"name": d["TableName"], "keys": _keys(d["KeySchema"]),
            "billing": d["BillingModeSummary"]["BillingMode"],
            "gsi": {g["IndexName"]: _keys(g["KeySchema"]) for g in d["GlobalSecondaryIndexes"]},
            "projection": projection, "ttl": ttl["AttributeName"],
            "stream": d["StreamSpecification"]["StreamViewType"]}


def test_table_agrees(synth: Synth, aws_stack: r.ResourceRefs) -> None:
    expected = table_from_spec()
    assert table_from_template(synth.json) == expected
    assert table_from_local() == expected


# ---- bucket: lifecycle and notifications --------------------------------------------------


def bucket_from_spec() -> dict[str, Any]:
    b = SPEC.bucket
    return {"name": b.name,
            "lifecycle": {(f"expire-{p.strip('/')}", p, b.retention_days) for p in b.expiring_prefixes},
            "notifications": {(n.prefix, n.suffix, SPEC.queue(n.queue).name) for n in b.notifications}}


def bucket_from_template(t: dict[str, Any]) -> dict[str, Any]:
    lid = logical_id_by_prop(t, "AWS::S3::Bucket", "BucketName", SPEC.bucket.name)
    p = t["Resources"][lid]["Properties"]
    names = queue_names(t)
    notifications = set()
    for c in p["NotificationConfiguration"]["QueueConfigurations"]:
        assert c["Event"] == "s3:ObjectCreated:*"
        rules = {x["Name"]: x["Value"] for x in c["Filter"]["S3Key"]["Rules"]}
        notifications.add((rules["prefix"], rules["suffix"], names[ref_target(c["Queue"])]))
    return {"name": p["BucketName"],
            "lifecycle": {(x["Id"], x["Prefix"], x["ExpirationInDays"]) for x in p["LifecycleConfiguration"]["Rules"]},
            "notifications": notifications}


def bucket_from_local() -> dict[str, Any]:
    s3 = aws.client("s3")
    name = SPEC.bucket.name
    rules = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
    notifications = set()
    for c in s3.get_bucket_notification_configuration(Bucket=name)["QueueConfigurations"]:
        assert c["Events"] == ["s3:ObjectCreated:*"]
        f = {x["Name"].lower(): x["Value"] for x in c["Filter"]["Key"]["FilterRules"]}
        notifications.add((f["prefix"], f["suffix"], c["QueueArn"].rsplit(":", 1)[1]))
    return {"name": name,
            "lifecycle": {(x["ID"], x["Filter"]["Prefix"], x["Expiration"]["Days"]) for x in rules},
            "notifications": notifications}


def test_bucket_agrees(synth: Synth, aws_stack: r.ResourceRefs) -> None:
    expected = bucket_from_spec()
    assert bucket_from_template(synth.json) == expected
    assert bucket_from_local() == expected


# ---- functions and their event sources ---------------------------------------------------


def test_functions_match_the_spec(synth: Synth) -> None:
    assert set(function_names(synth.json).values()) == {fn.name for fn in SPEC.functions}
    for fn in SPEC.functions:
        p = function_props(synth.json, fn.name)
        assert (p["MemorySize"], p["Timeout"]) == (fn.memory_mb, fn.timeout_s), fn.key
        assert p.get("PackageType", "Zip") == ("Image" if fn.package == "container" else "Zip")


def test_function_environment_matches_the_local_cloud(synth: Synth, aws_stack: r.ResourceRefs) -> None:
    """Same variable names everywhere; same values where they are not deployment-specific."""
    for fn in SPEC.functions:
        local_env = r.function_environment(SPEC, fn, aws_stack)
        cdk_env = function_props(synth.json, fn.name)["Environment"]["Variables"]
        extra = set(cdk_env) - set(local_env)
        # The stack adds the signing secret's ARN to the functions that sign.
        assert extra <= {"POSTERFLOW_SIGNING_SECRET_ARN"}, fn.key
        assert set(local_env) <= set(cdk_env), fn.key
        # Plain strings in the template (names, Powertools settings, sender, retention) are the
        # same on both sides; references (ARNs, URLs, the bucket's Ref) differ by nature.
        literal = {k: v for k, v in cdk_env.items() if isinstance(v, str) and k in local_env}
        assert {k: local_env[k] for k in literal} == literal, fn.key
        assert {r.ENV_SES_SENDER, r.ENV_RETENTION_DAYS, "POWERTOOLS_SERVICE_NAME"} <= set(literal)


def test_event_sources_match_the_spec(synth: Synth) -> None:
    t = synth.json
    qnames, fnames = queue_names(t), function_names(t)
    by_queue: dict[str, dict[str, Any]] = {}
    stream: list[dict[str, Any]] = []
    for m in resources(t, "AWS::Lambda::EventSourceMapping").values():
        p = m["Properties"]
        fn = fnames[ref_target(p["FunctionName"])]
        if "StartingPosition" in p:
            stream.append({"function": fn, "batch": p["BatchSize"]})
        else:
            by_queue[qnames[ref_target(p["EventSourceArn"])]] = {
                "function": fn, "batch": p["BatchSize"], "concurrency": p["ScalingConfig"]["MaximumConcurrency"],
                "window": p.get("MaximumBatchingWindowInSeconds", 0)}
    for q in SPEC.queues:
        if q.consumer:
            assert by_queue[q.name] == {"function": SPEC.function(q.consumer).name, "batch": q.batch_size,
                                        "concurrency": q.max_concurrency, "window": q.max_batching_window_s}
        assert by_queue[q.dlq_name]["function"] == SPEC.function(SPEC.dlq_consumer).name
    assert stream == [{"function": SPEC.function(SPEC.table.stream_consumer).name,
                       "batch": SPEC.table.stream_batch_size}]


# ---- priority lanes ----------------------------------------------------------------------


def _mapping_of(t: dict[str, Any], queue_name: str) -> dict[str, Any]:
    qnames = queue_names(t)
    (p,) = [m["Properties"] for m in resources(t, "AWS::Lambda::EventSourceMapping").values()
            if "EventSourceArn" in m["Properties"] and qnames.get(ref_target(m["Properties"]["EventSourceArn"]))
            == queue_name]
    return p


def test_each_lane_has_its_queue_dlq_mapping_and_alarm(synth: Synth) -> None:
    t = synth.json
    alarms = {a["Properties"]["AlarmName"] for a in resources(t, "AWS::CloudWatch::Alarm").values()}
    for work in ("render", "crop"):
        lanes = {lane: SPEC.lane(work, lane) for lane in ("urgent", "normal")}
        assert len({q.name for q in lanes.values()}) == 2 and len({q.dlq_name for q in lanes.values()}) == 2
        for q in lanes.values():
            mapping = _mapping_of(t, q.name)
            assert function_names(t)[ref_target(mapping["FunctionName"])] == SPEC.function(work).name
            assert mapping["ScalingConfig"]["MaximumConcurrency"] == q.max_concurrency
            assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
            dlq_mapping = _mapping_of(t, q.dlq_name)  # the dlq function drains both lanes' DLQs
            assert function_names(t)[ref_target(dlq_mapping["FunctionName"])] == SPEC.function(SPEC.dlq_consumer).name
            assert f"{q.dlq_name}-not-empty" in alarms and f"{q.name}-oldest-message" in alarms


def test_reserved_concurrency_is_the_sum_of_the_lanes_maxima(synth: Synth) -> None:
    """Bulk work cannot take the urgent lane's capacity: the normal lane's event source stops at
    its maximum, below what the function reserves; functions without lanes reserve nothing."""
    for fn in SPEC.functions:
        reserved = function_props(synth.json, fn.name).get("ReservedConcurrentExecutions")
        assert reserved == SPEC.reserved_concurrency(fn.key), fn.key
        if reserved is not None:
            urgent, normal = SPEC.lane(fn.key, "urgent"), SPEC.lane(fn.key, "normal")
            assert reserved == urgent.max_concurrency + normal.max_concurrency
            assert normal.max_concurrency <= reserved - urgent.max_concurrency


def test_the_local_cloud_polls_each_lane_with_its_own_limit(cloud: Any) -> None:
    """The local cloud's stand-in for the same limits: each lane's pollers, and the function's
    instances for both lanes at once, so the urgent lane finds one free of normal work."""
    for q in SPEC.queues:
        if not q.consumer:
            continue
        fn = SPEC.function(q.consumer)
        (poller,) = [p for p in cloud.sqs_pollers if p.queue_url == cloud.refs.queue_urls[q.key]]
        assert poller.function.name == fn.name
        assert poller.concurrency == (q.local_concurrency or fn.local_concurrency), q.key
        if q.lane:
            assert poller.function.concurrency == fn.local_concurrency
            assert fn.local_concurrency == sum(x.local_concurrency or 0 for x in SPEC.queues
                                               if x.consumer == q.consumer)


# ---- state machine -----------------------------------------------------------------------


def _placeholders_used_as_functions(definition: dict[str, Any]) -> set[str]:
    """``${X}`` used as a Task Resource or as a lambda:invoke FunctionName, at any depth."""
    found: set[str] = set()
    for state in definition.get("States", {}).values():
        for value in (state.get("Resource", ""), state.get("Parameters", {}).get("FunctionName", ""),
                      state.get("Arguments", {}).get("FunctionName", "")):
            if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
                found.add(value[2:-1])
        for branch in state.get("Branches", []):
            found |= _placeholders_used_as_functions(branch)
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                found |= _placeholders_used_as_functions(state[key])
    return found


def test_every_lambda_named_in_the_asl_exists_in_the_stack(synth: Synth) -> None:
    t = synth.json
    fnames = function_names(t)
    for sm in SPEC.state_machines:
        lid = logical_id_by_prop(t, "AWS::StepFunctions::StateMachine", "StateMachineName", sm.name)
        subs = t["Resources"][lid]["Properties"]["DefinitionSubstitutions"]
        used = _placeholders_used_as_functions(json.loads(sm.definition_path.read_text()))
        assert used, f"{sm.definition_file} names no Lambda"
        for placeholder in used:
            key = sm.function_substitutions[placeholder]
            assert fnames[ref_target(subs[placeholder])] == SPEC.function(key).name


def test_state_machine_definition_agrees(synth: Synth, aws_stack: r.ResourceRefs) -> None:
    t = synth.json
    sfn = aws.client("stepfunctions")
    for sm in SPEC.state_machines:
        lid = logical_id_by_prop(t, "AWS::StepFunctions::StateMachine", "StateMachineName", sm.name)
        p = t["Resources"][lid]["Properties"]
        # CDK: the file's text verbatim plus substitutions; local: the same text, substituted.
        assert json.loads(p["DefinitionString"]) == json.loads(sm.definition_path.read_text())
        assert p["DefinitionSubstitutions"]["SesSender"] == SPEC.ses_sender
        table_lid = logical_id_by_prop(t, "AWS::DynamoDB::Table", "TableName", SPEC.table.name)
        assert ref_target(p["DefinitionSubstitutions"]["TableName"]) == table_lid
        local = sfn.describe_state_machine(stateMachineArn=aws_stack.state_machine_arns[sm.key])
        assert local["name"] == sm.name
        assert json.loads(local["definition"]) == json.loads(render_definition(SPEC, sm, ARN_OF))
