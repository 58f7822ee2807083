"""Create the stack's resources in the embedded AWS from the one resource spec.

Mirrors what ``infra/`` declares for CloudFormation: the same names, queue settings, table
keys, lifecycle, notifications and state machine definition.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from posterflow import aws
from posterflow import resources as r

log = logging.getLogger("posterflow.local")
ACCOUNT_ID = "123456789012"
# This installation's signing secret, under the out dir: made once, reused on every start so
# links emailed before a restart keep working.
SIGNING_SECRET_FILE = "signing-secret"
SIGNING_SECRET_BYTES = 32


class ProvisionError(RuntimeError):
    pass


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{aws.region()}:{ACCOUNT_ID}:function:{name}"


def state_machine_arn(name: str) -> str:
    return f"arn:aws:states:{aws.region()}:{ACCOUNT_ID}:stateMachine:{name}"


def queue_url(endpoint: str, name: str) -> str:
    return f"{endpoint.rstrip('/')}/{ACCOUNT_ID}/{name}"


def render_definition(spec: r.StackSpec, sm: r.StateMachineSpec, arn_of: dict[str, str]) -> str:
    """The ASL text with ``${Placeholder}`` substitutions, as CDK's definitionSubstitutions do."""
    text = sm.definition_path.read_text()
    for placeholder, fn_key in sm.function_substitutions.items():
        text = text.replace("${" + placeholder + "}", arn_of[fn_key])
    text = text.replace("${TableName}", spec.table.name)
    text = text.replace("${SesSender}", spec.ses_sender)
    json.loads(text)  # fail here, with the file named, rather than inside moto
    return text


def provision(spec: r.StackSpec, endpoint: str) -> r.ResourceRefs:
    """Create every resource (idempotent) and return the references functions get."""
    sqs = aws.client("sqs")
    queue_urls: dict[str, str] = {}
    for q in spec.queues:
        dlq_url = sqs.create_queue(
            QueueName=q.dlq_name,
            Attributes={
                "MessageRetentionPeriod": str(q.dlq_retention_s),
                "VisibilityTimeout": str(spec.dlq_visibility_timeout_s),
            },
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        url = sqs.create_queue(
            QueueName=q.name,
            Attributes={
                "VisibilityTimeout": str(q.visibility_timeout_s),
                "MessageRetentionPeriod": str(q.retention_s),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(q.max_receive_count)}
                ),
            },
        )["QueueUrl"]
        queue_urls[q.key] = url
        queue_urls[f"{q.key}_dlq"] = dlq_url

    _create_table(spec.table)
    _create_bucket(spec, queue_urls)

    arn_of = {fn.key: function_arn(fn.name) for fn in spec.functions}
    sfn = aws.client("stepfunctions")
    sm_arns: dict[str, str] = {}
    existing = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    for sm in spec.state_machines:
        definition = render_definition(spec, sm, arn_of)
        if sm.name in existing:
            sfn.update_state_machine(stateMachineArn=existing[sm.name], definition=definition)
            sm_arns[sm.key] = existing[sm.name]
        else:
            sm_arns[sm.key] = sfn.create_state_machine(
                name=sm.name,
                definition=definition,
                roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{spec.prefix}-finalize",
            )["stateMachineArn"]

    aws.client("ses").verify_email_identity(EmailAddress=spec.ses_sender)

    return r.ResourceRefs(
        bucket=spec.bucket.name,
        table=spec.table.name,
        queue_urls=queue_urls,
        state_machine_arns=sm_arns,
        function_names={fn.key: fn.name for fn in spec.functions},
    )


def _create_table(t: r.TableSpec) -> None:
    ddb = aws.client("dynamodb")
    if t.name in ddb.list_tables()["TableNames"]:
        return
    attrs = [t.partition_key, t.sort_key, t.gsi_partition_key, t.gsi_sort_key]
    ddb.create_table(
        TableName=t.name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in attrs],
        KeySchema=[
            {"AttributeName": t.partition_key, "KeyType": "HASH"},
            {"AttributeName": t.sort_key, "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": t.gsi_name,
                "KeySchema": [
                    {"AttributeName": t.gsi_partition_key, "KeyType": "HASH"},
                    {"AttributeName": t.gsi_sort_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": t.stream_view},
    )
    ddb.update_time_to_live(
        TableName=t.name, TimeToLiveSpecification={"Enabled": True, "AttributeName": t.ttl_attribute}
    )


def _create_bucket(spec: r.StackSpec, queue_urls: dict[str, str]) -> None:
    s3 = aws.client("s3")
    b = spec.bucket
    names = {x["Name"] for x in s3.list_buckets().get("Buckets", [])}
    if b.name not in names:
        s3.create_bucket(Bucket=b.name)
    s3.put_bucket_lifecycle_configuration(
        Bucket=b.name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": f"expire-{prefix.strip('/')}",
                    "Filter": {"Prefix": prefix},
                    "Status": "Enabled",
                    "Expiration": {"Days": b.retention_days},
                }
                for prefix in b.expiring_prefixes
            ]
        },
    )
    sqs = aws.client("sqs")
    configs: list[dict[str, Any]] = []
    for n in b.notifications:
        arn = sqs.get_queue_attributes(QueueUrl=queue_urls[n.queue], AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        configs.append(
            {
                "QueueArn": arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {
                    "Key": {
                        "FilterRules": [
                            {"Name": "prefix", "Value": n.prefix},
                            {"Name": "suffix", "Value": n.suffix},
                        ]
                    }
                },
            }
        )
    s3.put_bucket_notification_configuration(
        Bucket=b.name, NotificationConfiguration={"QueueConfigurations": configs}
    )


# ---- the signing secret ----------------------------------------------------------------------


def signing_secret_name(spec: r.StackSpec) -> str:
    """The secret's name, as the stack names it (``infra/posterflow_infra/stack.py``)."""
    return f"{spec.prefix}/signing-secret"


def local_signing_secret(out_dir: Path) -> str:
    """This installation's signing secret: random on the first start, then read back."""
    path = out_dir / SIGNING_SECRET_FILE
    if not path.exists():
        _create_secret_file(path)
    return _read_secret_file(path)


def _create_secret_file(path: Path) -> None:
    """Write the whole secret to a private temporary file, then link it into place: the name
    appears with its content and mode complete, and a concurrent start that won the race keeps
    its secret (the link fails) rather than being overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(SIGNING_SECRET_BYTES) + "\n")
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def _read_secret_file(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o); set to 0600", path, mode)
        path.chmod(0o600)
    value = path.read_text().strip()
    if not value:
        raise ProvisionError(f"{path} is empty; delete it to make a new signing secret "
                             "(download links and job tokens already handed out stop working)")
    return value


def provision_signing_secret(spec: r.StackSpec, value: str) -> str:
    """Store ``value`` as the stack's signing secret in the embedded Secrets Manager; its ARN.

    Functions get the ARN and read the value at run time, exactly as in AWS."""
    sm = aws.client("secretsmanager")
    name = signing_secret_name(spec)
    try:
        existing = sm.get_secret_value(SecretId=name)
    except sm.exceptions.ResourceNotFoundException:
        return _create_signing_secret(name, value)
    if existing["SecretString"] == value:
        return str(existing["ARN"])
    # Another installation's secret, left in this process's embedded AWS by an earlier cloud
    # with another out dir: replace it outright, so none of its versions verifies our tokens.
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    return _create_signing_secret(name, value)


def _create_signing_secret(name: str, value: str) -> str:
    created = aws.client("secretsmanager").create_secret(
        Name=name, SecretString=value,
        Description="HMAC key for download links, job tokens and webhook secrets (local cloud)",
    )
    return str(created["ARN"])
