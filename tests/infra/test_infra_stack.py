"""Resource counts and the properties that matter, on the one synthesized template."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match
from infra_helpers import Synth
from template_views import (
    actions_of,
    function_props,
    logical_id_by_prop,
    queue_names,
    ref_target,
    resources,
    role_statements,
)

from posterflow import resources as r

SPEC = r.stack_spec()


def test_resource_counts(synth: Synth) -> None:
    expected = {
        "AWS::Lambda::Function": len(SPEC.functions),
        "AWS::Lambda::LayerVersion": 2,
        "AWS::SQS::Queue": 2 * len(SPEC.queues),
        "AWS::DynamoDB::Table": 1,
        "AWS::S3::Bucket": 2,  # data + access logs
        # one per consumed queue, one per DLQ (→ dlq), one for the table stream (→ progress)
        "AWS::Lambda::EventSourceMapping": sum(q.consumer is not None for q in SPEC.queues) + len(SPEC.queues) + 1,
        "AWS::StepFunctions::StateMachine": len(SPEC.state_machines),
        "AWS::ApiGateway::RestApi": 1,
        "AWS::ApiGateway::ApiKey": 1,
        "AWS::ApiGateway::UsagePlan": 1,
        "AWS::ApiGatewayV2::Api": 1,
        "AWS::ApiGatewayV2::Route": 3,
        "AWS::ApiGatewayV2::Stage": 1,
        "AWS::SES::EmailIdentity": 1,
        # DLQ depth + oldest message per queue, errors per function
        "AWS::CloudWatch::Alarm": 2 * len(SPEC.queues) + len(SPEC.functions),
        "AWS::CloudWatch::Dashboard": 1,
    }
    for cfn_type, count in expected.items():
        synth.template.resource_count_is(cfn_type, count)
    # No custom-resource Lambdas sneaked in (bucket notifications are a plain property).
    assert not resources(synth.json, "Custom::S3BucketNotifications")


def test_data_bucket_is_private_encrypted_logged_and_expires(synth: Synth) -> None:
    b = SPEC.bucket
    lid = logical_id_by_prop(synth.json, "AWS::S3::Bucket", "BucketName", b.name)
    props = synth.json["Resources"][lid]["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert "DestinationBucketName" in props["LoggingConfiguration"]
    rules = {(x["Prefix"], x["ExpirationInDays"], x["Status"]) for x in props["LifecycleConfiguration"]["Rules"]}
    assert rules == {(p, b.retention_days, "Enabled") for p in b.expiring_prefixes}
    # enforce_ssl: a Deny on aws:SecureTransport=false in the bucket policy
    policies = [p for p in resources(synth.json, "AWS::S3::BucketPolicy").values()
                if ref_target(p["Properties"]["Bucket"]) == lid]
    statements = policies[0]["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)


def test_queues_are_encrypted_tls_only_and_redrive(synth: Synth) -> None:
    names = queue_names(synth.json)
    for lid, res in resources(synth.json, "AWS::SQS::Queue").items():
        assert res["Properties"]["SqsManagedSseEnabled"] is True, names[lid]
    tls_only: set[str] = set()
    for pol in resources(synth.json, "AWS::SQS::QueuePolicy").values():
        for st in pol["Properties"]["PolicyDocument"]["Statement"]:
            if st["Effect"] == "Deny" and st.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}:
                tls_only.update(ref_target(q) for q in pol["Properties"]["Queues"])
    assert tls_only == set(names)


def test_dlq_visibility_allows_the_dlq_function_timeout(synth: Synth) -> None:
    """Lambda rejects an SQS event source whose visibility timeout is below the function timeout."""
    timeout = SPEC.function(SPEC.dlq_consumer).timeout_s
    for q in SPEC.queues:
        lid = logical_id_by_prop(synth.json, "AWS::SQS::Queue", "QueueName", q.dlq_name)
        assert synth.json["Resources"][lid]["Properties"]["VisibilityTimeout"] >= timeout
    for q in SPEC.queues:
        if q.consumer:
            assert q.visibility_timeout_s >= SPEC.function(q.consumer).timeout_s


def test_table_on_demand_pitr_ttl_stream_gsi(synth: Synth) -> None:
    t = SPEC.table
    synth.template.has_resource_properties("AWS::DynamoDB::Table", {
        "TableName": t.name,
        "BillingMode": "PAY_PER_REQUEST",
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "TimeToLiveSpecification": {"AttributeName": t.ttl_attribute, "Enabled": True},
        "StreamSpecification": {"StreamViewType": t.stream_view},
        "SSESpecification": {"SSEEnabled": True},
        "GlobalSecondaryIndexes": [Match.object_like({"IndexName": t.gsi_name})],
    })


@pytest.mark.parametrize("fn", SPEC.functions, ids=lambda f: f.key)
def test_function_settings_tracing_and_powertools(synth: Synth, fn: r.FunctionSpec) -> None:
    props = function_props(synth.json, fn.name)
    assert props["TracingConfig"] == {"Mode": "Active"}
    env = props["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == fn.name
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == SPEC.prefix
    assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
    assert "LoggingConfig" in props  # its own log group with a retention period
    if fn.package == "container":
        assert props["PackageType"] == "Image"
        assert props["ImageConfig"] == {"Command": [fn.handler]}
    else:
        assert props["Runtime"] == "python3.12"
        assert props["Handler"] == fn.handler
        # core + dependencies; the stream function also Lambda Web Adapter's (test_infra_stream.py)
        assert len(props["Layers"]) == (3 if fn.invoke_mode == "response_stream" else 2)


def test_every_sqs_event_source_reports_partial_failures(synth: Synth) -> None:
    mappings = [m["Properties"] for m in resources(synth.json, "AWS::Lambda::EventSourceMapping").values()]
    assert mappings and all(m["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for m in mappings)
    sqs_mappings = [m for m in mappings if "StartingPosition" not in m]
    assert all(m["ScalingConfig"]["MaximumConcurrency"] >= 2 for m in sqs_mappings)


def test_rest_api_needs_a_key_except_public_routes(synth: Synth) -> None:
    methods = resources(synth.json, "AWS::ApiGateway::Method")
    paths = _rest_paths(synth.json)
    public = {(m["Properties"]["HttpMethod"], paths[ref_target(m["Properties"]["ResourceId"])])
              for m in methods.values() if not m["Properties"].get("ApiKeyRequired")}
    assert public == {("GET", "/health"), ("GET", "/api/jobs/{job_id}/download"),
                      ("GET", "/dashboard"), ("GET", "/static/{name}"),  # the page: no data, its calls send a key
                      # the job streams: EventSource sends no key; the stream function checks token or key
                      ("GET", "/api/templates/job/{job_id}/stream"), ("GET", "/api/batch/jobs/{job_id}/stream")}
    # everything else goes through the proxy with a key
    assert {paths.get(ref_target(m["Properties"]["ResourceId"]), "/") for m in methods.values()
            if m["Properties"].get("ApiKeyRequired")} >= {"/", "/{proxy+}", "/api/{proxy+}"}
    plan = next(iter(resources(synth.json, "AWS::ApiGateway::UsagePlan").values()))["Properties"]
    assert plan["Throttle"]["RateLimit"] > 0 and plan["Throttle"]["BurstLimit"] > 0
    synth.template.has_resource_properties("AWS::ApiGateway::Stage", {
        "StageName": SPEC.api_stage, "TracingEnabled": True,
        "AccessLogSetting": Match.object_like({"DestinationArn": Match.any_value()}),
    })


def _rest_paths(t: dict[str, Any]) -> dict[str, str]:
    res = resources(t, "AWS::ApiGateway::Resource")

    def path(lid: str) -> str:
        props = res[lid]["Properties"]
        parent = props["ParentId"]
        prefix = path(ref_target(parent)) if isinstance(parent, dict) and "Ref" in parent else ""
        return f"{prefix}/{props['PathPart']}"

    return {lid: path(lid) for lid in res}


def test_websocket_routes_reach_progress(synth: Synth) -> None:
    routes = {r_["Properties"]["RouteKey"] for r_ in resources(synth.json, "AWS::ApiGatewayV2::Route").values()}
    assert routes == {"$connect", "$disconnect", "$default"}
    progress_lid = logical_id_by_prop(synth.json, "AWS::Lambda::Function", "FunctionName",
                                      SPEC.function("progress").name)
    integration = next(iter(resources(synth.json, "AWS::ApiGatewayV2::Integration").values()))["Properties"]
    assert progress_lid in json.dumps(integration["IntegrationUri"])
    synth.template.has_resource_properties("AWS::ApiGatewayV2::Stage", {
        "StageName": SPEC.websocket_stage, "AutoDeploy": True,
        "AccessLogSettings": Match.object_like({"DestinationArn": Match.any_value()})})


def test_state_machine_logs_all_and_traces(synth: Synth) -> None:
    sm = SPEC.state_machine("finalize")
    synth.template.has_resource_properties("AWS::StepFunctions::StateMachine", {
        "StateMachineName": sm.name,
        "TracingConfiguration": {"Enabled": True},
        "LoggingConfiguration": Match.object_like({"Level": "ALL"}),
    })


def test_least_privilege(synth: Synth) -> None:
    t = synth.json
    acts = {fn.key: actions_of(role_statements(t, fn.name)) for fn in SPEC.functions}
    for key, a in acts.items():
        assert not any(x == "*" or x.endswith(":*") for x in a), (key, a)
    assert {k for k, a in acts.items() if "ses:SendEmail" in a} == {"finalize"}
    assert {k for k, a in acts.items() if "execute-api:ManageConnections" in a} == {"progress"}
    assert {k for k, a in acts.items() if any(x.startswith("s3:") for x in a)} == {
        "api", "splitter", "render", "crop", "progress", "stream", "finalize"}
    assert not any(x.startswith("s3:Put") or x.startswith("dynamodb:Put") for x in acts["stream"])  # reads only
    assert not any(x.startswith("s3:Delete") for a in acts.values() for x in a)
    # Only the api invokes another function (render, for synchronous posters).
    render_lid = logical_id_by_prop(t, "AWS::Lambda::Function", "FunctionName", SPEC.function("render").name)
    invokers = {fn.key for fn in SPEC.functions
                if any("lambda:InvokeFunction" in actions_of([s]) and render_lid in json.dumps(s["Resource"])
                       for s in role_statements(t, fn.name))}
    assert invokers == {"api"}
    # Each function writes only to its own log group.
    for fn in SPEC.functions:
        log_statements = [s for s in role_statements(t, fn.name) if "logs:PutLogEvents" in actions_of([s])]
        assert len(log_statements) == 1 and "*" not in json.dumps(log_statements[0]["Resource"]).replace(":*", "")


def test_progress_heartbeat_is_scheduled(synth: Synth) -> None:
    synth.template.has_resource_properties("AWS::Events::Rule", {
        "ScheduleExpression": f"rate({SPEC.heartbeat_interval_s // 60} minute"
                              f"{'s' if SPEC.heartbeat_interval_s // 60 > 1 else ''})",
        "Targets": Match.array_with([Match.object_like({"Input": '{"action":"heartbeat"}'})]),
    })


def test_stalled_job_sweep_is_scheduled(synth: Synth) -> None:
    synth.template.has_resource_properties("AWS::Events::Rule", {
        "ScheduleExpression": f"rate({SPEC.sweep_interval_s // 60} minutes)",
        "Targets": Match.array_with([Match.object_like({"Input": '{"action":"sweep"}'})]),
    })
