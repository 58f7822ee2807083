"""The posterflow stack: every resource of the shared spec, wired together."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ses as ses
from constructs import Construct

from posterflow import config
from posterflow import resources as r
from posterflow_infra.apis import RestApi, WebSocketApi
from posterflow_infra.functions import Functions
from posterflow_infra.monitoring import Monitoring
from posterflow_infra.permissions import ACCESS
from posterflow_infra.queues import WorkQueues
from posterflow_infra.settings import DeploySettings
from posterflow_infra.storage import DataBucket, JobsTable
from posterflow_infra.workflow import FinalizeWorkflow, state_machine_arn

# Progress events are worth little once stale: retry a failing stream batch twice, bisecting
# to isolate a bad record, and drop records older than an hour rather than block the shard.
STREAM_RETRY_ATTEMPTS = 2
STREAM_MAX_RECORD_AGE = Duration.hours(1)


class PosterflowStack(Stack):
    def __init__(self, scope: Construct, cid: str, *, settings: DeploySettings, **kwargs: Any) -> None:
        super().__init__(scope, cid, description="posterflow: posters and face crops at scale", **kwargs)
        self.settings = settings
        self.nag_acknowledgments: list[tuple[str, str]] = []  # set by the builder with cdk-nag on
        self.spec = spec = settings.spec()

        self.queues = WorkQueues(self, "Queues", spec=spec,
                                 dlq_visibility=Duration.seconds(spec.dlq_visibility_timeout_s))
        self.data = DataBucket(self, "Storage", spec=spec.bucket,
                               queues={k: p.queue for k, p in self.queues.pairs.items()})
        self.jobs = JobsTable(self, "Jobs", spec=spec.table)
        self.rest = RestApi(self, "Rest", spec=spec)
        self.websocket = WebSocketApi(self, "WebSocket", spec=spec,
                                      logging_ready=self.rest.api.node.try_find_child("Account"))
        self.sender = ses.EmailIdentity(self, "Sender", identity=ses.Identity.email(spec.ses_sender))
        # Functions get its ARN and read the value at run time (posterflow.signing_keys), so the
        # value is in no template and no function configuration. The local cloud creates the
        # same secret, by the same name, in its embedded Secrets Manager.
        self.signing_secret = secretsmanager.Secret(
            self, "SigningSecret",
            secret_name=f"{spec.prefix}/signing-secret",
            description="HMAC key for download links, job tokens and webhook signatures",
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64,
                                                                        exclude_punctuation=True),
        )

        self.state_machine_arns = {sm.key: state_machine_arn(self, sm.name) for sm in spec.state_machines}
        refs = r.ResourceRefs(
            bucket=self.data.bucket.bucket_name,
            table=self.jobs.table.table_name,
            queue_urls=self.queues.queue_urls(),
            state_machine_arns=self.state_machine_arns,
            # Literal names (the spec sets them), not tokens: a function may name the function
            # that depends on it without a dependency cycle.
            function_names={fn.key: fn.name for fn in spec.functions},
            websocket_endpoint=self.websocket.callback_url,
            websocket_url=self.websocket.url,
            api_url=self.rest.url,
        )
        self.functions = Functions(self, "Functions", spec=spec, refs=refs,
                                   reserve_concurrency=settings.reserve_concurrency)
        fns = {key: d.function for key, d in self.functions.by_key.items()}

        self.workflows = {
            sm.key: FinalizeWorkflow(self, f"{sm.key.title()}Workflow", spec=spec, sm_spec=sm, functions=fns,
                                     table=self.jobs.table, sender=self.sender)
            for sm in spec.state_machines
        }
        self._event_sources(spec, fns)
        self.rest.route_to(fns["api"])
        self.rest.route_streams_to(fns["stream"])
        self.websocket.route_to(fns["progress"])
        self._grants(fns)
        self.monitoring = Monitoring(self, "Monitoring", prefix=spec.prefix, queues=list(self.queues.pairs.values()),
                                     functions=fns, alarm_email=settings.alarm_email)
        self._outputs()

    def _event_sources(self, spec: r.StackSpec, fns: dict[str, lambda_.Function]) -> None:
        for q in spec.queues:
            if q.consumer is None:
                continue
            fns[q.consumer].add_event_source(sources.SqsEventSource(
                self.queues.queue(q.key),
                batch_size=q.batch_size,
                max_batching_window=Duration.seconds(q.max_batching_window_s) if q.max_batching_window_s else None,
                max_concurrency=q.max_concurrency,
                report_batch_item_failures=True,
            ))
        for pair in self.queues.pairs.values():
            fns[spec.dlq_consumer].add_event_source(sources.SqsEventSource(
                pair.dlq, batch_size=spec.dlq_batch_size, max_concurrency=spec.dlq_max_concurrency,
                report_batch_item_failures=True,
            ))
        fns[spec.table.stream_consumer].add_event_source(sources.DynamoEventSource(
            self.jobs.table,
            starting_position=lambda_.StartingPosition.LATEST,
            batch_size=spec.table.stream_batch_size,
            report_batch_item_failures=True,
            bisect_batch_on_error=True,
            retry_attempts=STREAM_RETRY_ATTEMPTS,
            max_record_age=STREAM_MAX_RECORD_AGE,
        ))
        # The stalled-job sweep: outstanding items of jobs without progress fail with a reason.
        events.Rule(self, "StalledJobSweep",
                    schedule=events.Schedule.rate(Duration.seconds(spec.sweep_interval_s)),
                    targets=[targets.LambdaFunction(fns[spec.dlq_consumer],
                                                    event=events.RuleTargetInput.from_object({"action": "sweep"}))])
        # Server-pushed heartbeats to every connection following an active job.
        events.Rule(self, "ProgressHeartbeat",
                    schedule=events.Schedule.rate(Duration.seconds(spec.heartbeat_interval_s)),
                    targets=[targets.LambdaFunction(fns[spec.table.stream_consumer],
                                                    event=events.RuleTargetInput.from_object({"action": "heartbeat"}))])

    def _grants(self, fns: dict[str, lambda_.Function]) -> None:
        for key, access in ACCESS.items():
            fn = fns[key]
            if access.bucket:
                self.data.bucket.grant_read(fn)
                self.data.bucket.grant_put(fn)
            if access.table:
                self.jobs.table.grant_read_write_data(fn)
            for q in access.send_to:
                self.queues.queue(q).grant_send_messages(fn)
            for target in access.invoke:
                fns[target].grant_invoke(fn)
            for sm in access.start_workflows:
                self.workflows[sm].grant_start(fn, self.state_machine_arns[sm])
            if access.send_email:
                self.sender.grant(fn, "ses:SendEmail", "ses:SendRawEmail")
            if access.manage_connections:
                self.websocket.grant_manage_connections(fn)
            if access.bucket_read:
                self.data.bucket.grant_read(fn)
            if access.table_read:
                self.jobs.table.grant_read_data(fn)
            if access.read_api_keys:
                # Only the key and usage-plan collections (GetApiKeys, GetUsagePlans), read-only.
                fn.add_to_role_policy(iam.PolicyStatement(
                    actions=["apigateway:GET"],
                    resources=[f"arn:{Aws.PARTITION}:apigateway:{Aws.REGION}::/apikeys",
                               f"arn:{Aws.PARTITION}:apigateway:{Aws.REGION}::/usageplans"]))
            if access.signing_secret:
                self.signing_secret.grant_read(fn)
                fn.add_environment(config.ENV_SIGNING_SECRET_ARN, self.signing_secret.secret_arn)

    def _outputs(self) -> None:
        CfnOutput(self, "ApiUrl", value=self.rest.url, description="REST API base URL (send x-api-key)")
        CfnOutput(self, "ApiKeyId", value=self.rest.api_key.key_id,
                  description="aws apigateway get-api-key --include-value --api-key <id> prints the key")
        CfnOutput(self, "WebSocketUrl", value=self.websocket.url, description="Progress events (wss)")
        CfnOutput(self, "BucketName", value=self.data.bucket.bucket_name, description="Uploads and results")
        CfnOutput(self, "DashboardName", value=self.monitoring.dashboard.dashboard_name)
        CfnOutput(self, "JobsDashboardUrl", value=f"{self.rest.url}dashboard",
                  description="The jobs dashboard: open it, enter an API key (kept in the tab's session only)")
