"""The data bucket (with its access-log bucket and S3→SQS notifications) and the jobs table."""

from __future__ import annotations

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from posterflow import resources as r

ACCESS_LOG_RETENTION_DAYS = 90


class DataBucket(Construct):
    """uploads/, outputs/, archives/, templates/, assets/, manifests/ in one bucket."""

    def __init__(self, scope: Construct, cid: str, *, spec: r.BucketSpec, queues: dict[str, sqs.Queue]) -> None:
        super().__init__(scope, cid)
        self.access_logs = s3.Bucket(
            self, "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs",
                                              expiration=Duration.days(ACCESS_LOG_RETENTION_DAYS))],
        )
        self.bucket = s3.Bucket(
            self, "Data",
            bucket_name=spec.name,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{spec.name}/",
            lifecycle_rules=[
                s3.LifecycleRule(id=f"expire-{prefix.strip('/')}", prefix=prefix,
                                 expiration=Duration.days(spec.retention_days))
                for prefix in spec.expiring_prefixes
            ],
        )
        self._notify(spec, queues)

    def _notify(self, spec: r.BucketSpec, queues: dict[str, sqs.Queue]) -> None:
        """S3→SQS notifications as a plain bucket property.

        ``Bucket.add_event_notification`` would deploy a custom-resource Lambda (with a
        wildcard ``s3:PutBucketNotification`` role) only to break a dependency cycle. The bucket
        name is known up front, so the queue policies name the bucket's ARN literally and the
        bucket simply depends on them: S3 checks that it may send when the bucket is created.
        """
        bucket_arn = Stack.of(self).format_arn(service="s3", region="", account="", resource=spec.name)
        configs: list[s3.CfnBucket.QueueConfigurationProperty] = []
        cfn_bucket = self.bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        allowed: set[str] = set()
        for n in spec.notifications:
            queue = queues[n.queue]
            if n.queue not in allowed:
                allowed.add(n.queue)
                queue.add_to_resource_policy(iam.PolicyStatement(
                    sid="AllowDataBucketNotifications",
                    principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                    actions=["sqs:SendMessage"],
                    resources=[queue.queue_arn],
                    conditions={"ArnLike": {"aws:SourceArn": bucket_arn},
                                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
                ))
                # The QueuePolicy that add_to_resource_policy created (and enforce_ssl shares).
                policy = queue.node.find_child("Policy")
                cfn_bucket.node.add_dependency(policy)
            configs.append(s3.CfnBucket.QueueConfigurationProperty(
                event="s3:ObjectCreated:*",
                queue=queue.queue_arn,
                filter=s3.CfnBucket.NotificationFilterProperty(
                    s3_key=s3.CfnBucket.S3KeyFilterProperty(rules=[
                        s3.CfnBucket.FilterRuleProperty(name="prefix", value=n.prefix),
                        s3.CfnBucket.FilterRuleProperty(name="suffix", value=n.suffix),
                    ])
                ),
            ))
        cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            queue_configurations=configs
        )


class JobsTable(Construct):
    """Single-table design: jobs, items, logs, connections, template versions."""

    def __init__(self, scope: Construct, cid: str, *, spec: r.TableSpec) -> None:
        super().__init__(scope, cid)
        s = dynamodb.AttributeType.STRING
        self.table = dynamodb.Table(
            self, "Table",
            table_name=spec.name,
            partition_key=dynamodb.Attribute(name=spec.partition_key, type=s),
            sort_key=dynamodb.Attribute(name=spec.sort_key, type=s),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            time_to_live_attribute=spec.ttl_attribute,
            stream=dynamodb.StreamViewType[spec.stream_view],
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
        )
        self.table.add_global_secondary_index(
            index_name=spec.gsi_name,
            partition_key=dynamodb.Attribute(name=spec.gsi_partition_key, type=s),
            sort_key=dynamodb.Attribute(name=spec.gsi_sort_key, type=s),
            projection_type=dynamodb.ProjectionType.ALL,
        )
