from posterflow import aws
from posterflow import resources as r


def test_provision_creates_every_resource(aws_stack: r.ResourceRefs) -> None:
    spec = r.stack_spec()
    sqs = aws.client("sqs")
    for q in spec.queues:
        attrs = sqs.get_queue_attributes(QueueUrl=aws_stack.queue_urls[q.key], AttributeNames=["All"])[
            "Attributes"
        ]
        assert attrs["VisibilityTimeout"] == str(q.visibility_timeout_s)
        assert '"maxReceiveCount": "3"' in attrs["RedrivePolicy"] or '"maxReceiveCount": 3' in attrs["RedrivePolicy"]
    table = aws.client("dynamodb").describe_table(TableName=spec.table.name)["Table"]
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert table["GlobalSecondaryIndexes"][0]["IndexName"] == spec.table.gsi_name
    notif = aws.client("s3").get_bucket_notification_configuration(Bucket=spec.bucket.name)
    suffixes = {rule["Value"] for c in notif["QueueConfigurations"] for rule in c["Filter"]["Key"]["FilterRules"]}
    assert {".zip", ".csv"} <= suffixes
    assert "finalize" in aws_stack.state_machine_arns
