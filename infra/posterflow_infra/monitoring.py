"""Alarms (DLQ depth, age of oldest message, function errors) and one dashboard: queues, the
functions' own metrics, and the application metrics the functions print as EMF lines
(``posterflow/observability.py``: namespace = the stack prefix, dimension ``service`` = the
function's name, ``section`` for the sections listed in ``POSTERFLOW_METRIC_SECTIONS``)."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from posterflow import resources as r
from posterflow.observability import SECTION_DIMENSION, SERVICE_DIMENSION, Metric
from posterflow_infra.queues import QueuePair

PERIOD = Duration.minutes(5)


def oldest_message_threshold(pair: QueuePair) -> Duration:
    """A message older than every retry would take (visibility x receives) is stuck, not queued."""
    return Duration.seconds(pair.spec.visibility_timeout_s * pair.spec.max_receive_count)


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        prefix: str,
        queues: list[QueuePair],
        functions: Mapping[str, lambda_.IFunction],
        alarm_email: str | None,
    ) -> None:
        super().__init__(scope, cid)
        # CloudWatch can only publish to an encrypted topic whose key lets it; the AWS-managed
        # SNS key does not, hence a customer key with a statement for CloudWatch.
        key = kms.Key(self, "AlarmsKey", enable_key_rotation=True,
                      description=f"{prefix}: encrypts the alarm topic")
        key.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],  # in a key policy, "*" means this key
        ))
        self.topic = sns.Topic(self, "Alarms", topic_name=f"{prefix}-alarms", master_key=key, enforce_ssl=True)
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        action = cw_actions.SnsAction(self.topic)

        self.alarms: list[cw.Alarm] = []
        for pair in queues:
            name = pair.spec.name
            self._alarm(action, f"{pair.spec.key.title()}DlqDepth", f"{pair.spec.dlq_name}-not-empty",
                        pair.dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                        threshold=0, what=f"messages in {pair.spec.dlq_name}: items failed after all retries")
            self._alarm(action, f"{pair.spec.key.title()}OldestMessage", f"{name}-oldest-message",
                        pair.queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
                        threshold=oldest_message_threshold(pair).to_seconds(),
                        what=f"{name}: a message has waited longer than all its retries would take")
        for key_name, fn in functions.items():
            self._alarm(action, f"{key_name.title()}Errors", f"{prefix}-{key_name}-errors",
                        fn.metric_errors(period=PERIOD, statistic="Sum"), threshold=0,
                        what=f"{prefix}-{key_name}: invocations failed")

        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"{prefix}-overview")
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Queue depth", width=12, left=[
                p.queue.metric_approximate_number_of_messages_visible(period=PERIOD, label=p.spec.key)
                for p in queues]),
            cw.GraphWidget(title="DLQ depth", width=12, left=[
                p.dlq.metric_approximate_number_of_messages_visible(period=PERIOD, label=p.spec.dlq_name)
                for p in queues], right=[
                # The DLQ consumer empties the queues quickly: what it failed shows here.
                cw.Metric(namespace=prefix, metric_name=Metric.ITEMS_DEAD_LETTERED.value, statistic="Sum",
                          dimensions_map={SERVICE_DIMENSION: r.stack_spec(prefix).function("dlq").name},
                          period=PERIOD, label="items dead-lettered")]),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Invocations", width=8, left=[
                f.metric_invocations(period=PERIOD, label=k) for k, f in functions.items()]),
            cw.GraphWidget(title="Errors", width=8, left=[
                f.metric_errors(period=PERIOD, label=k) for k, f in functions.items()]),
            cw.GraphWidget(title="Duration p90 (ms)", width=8, left=[
                f.metric_duration(period=PERIOD, statistic="p90", label=k) for k, f in functions.items()]),
        )
        self._application_widgets(prefix)
        self.dashboard.add_widgets(cw.AlarmStatusWidget(title="Alarms", width=24, alarms=self.alarms))

    def _application_widgets(self, prefix: str) -> None:
        """The EMF metrics: posters, crops, their times, faces found, queue-to-done latency."""
        spec = r.stack_spec(prefix)
        render, crop = spec.function("render").name, spec.function("crop").name

        def metric(name: Metric, service: str, statistic: str, label: str) -> cw.Metric:
            return cw.Metric(namespace=prefix, metric_name=name.value, dimensions_map={SERVICE_DIMENSION: service},
                             statistic=statistic, period=PERIOD, label=label)

        self.dashboard.add_widgets(
            cw.GraphWidget(title="Posters", width=6, left=[
                metric(Metric.POSTERS_RENDERED, render, "Sum", "rendered"),
                metric(Metric.POSTERS_FAILED, render, "Sum", "failed")]),
            cw.GraphWidget(title="Render time (ms)", width=6, left=[
                metric(Metric.RENDER_MS, render, s, s) for s in ("p50", "p90", "Maximum")]),
            cw.GraphWidget(title="Render time by section, p90 (ms)", width=6, left=[cw.MathExpression(
                # One line per section listed in POSTERFLOW_METRIC_SECTIONS (a bounded set).
                expression=(f"SEARCH('{{{prefix},{SERVICE_DIMENSION},{SECTION_DIMENSION}}} "
                            f"MetricName=\"{Metric.RENDER_MS.value}\"', 'p90', 300)"),
                label="", period=PERIOD)]),
            cw.GraphWidget(title="Queue to done (ms)", width=6, left=[
                metric(Metric.QUEUE_TO_DONE_MS, render, "p90", "posters p90"),
                metric(Metric.QUEUE_TO_DONE_MS, crop, "p90", "crops p90")]),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Crops", width=6, left=[
                metric(Metric.CROPS_SUCCEEDED, crop, "Sum", "cropped"),
                metric(Metric.CROPS_FAILED, crop, "Sum", "failed")]),
            cw.GraphWidget(title="Crop time (ms)", width=6, left=[
                metric(Metric.CROP_MS, crop, s, s) for s in ("p50", "p90", "Maximum")]),
            cw.GraphWidget(title="Faces found", width=6, left=[
                metric(Metric.FACES_FOUND, crop, "Sum", "faces"),
                metric(Metric.FACES_FOUND, crop, "Average", "per photo")]),
            cw.GraphWidget(title="Cold starts", width=6, left=[
                metric(Metric.COLD_STARTS, fn.name, "Sum", fn.key) for fn in spec.functions]),
        )

    def _alarm(self, action: cw_actions.SnsAction, cid: str, name: str, metric: cw.Metric,
               *, threshold: float, what: str) -> None:
        alarm = metric.create_alarm(
            self, cid,
            alarm_name=name,
            alarm_description=what,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(action)
        self.alarms.append(alarm)
