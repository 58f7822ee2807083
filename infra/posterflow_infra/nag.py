"""cdk-nag (AwsSolutions) acknowledgments, each scoped to its construct and with its reason.

cdk-nag 3 matches a finding by its exact id (``AwsSolutions-IAM5[Resource::<Logical.Arn>/*]``),
so the ids are built from the constructs' logical ids here rather than copied from a report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import IConstruct

from posterflow_infra.permissions import ACCESS

if TYPE_CHECKING:
    from posterflow_infra.stack import PosterflowStack

PACK = "AwsSolutions::"

S3_READ_PUT = {
    "Action::s3:GetObject*": "s3:GetObject* is the CDK read grant's family (object, ACL, version, tagging "
                             "reads) on this one bucket; functions read templates, assets, uploads and outputs",
    "Action::s3:GetBucket*": "bucket-level reads (location, policy status) that boto3's presigner and S3 "
                             "clients need, on this one bucket",
    "Action::s3:List*": "listing is needed to page through a job's outputs and uploads, on this one bucket",
    "Action::s3:Abort*": "aborting multipart uploads of large archives/outputs this function started",
}
XRAY = ("X-Ray PutTraceSegments/PutTelemetryRecords have no resource-level permissions (AWS documents "
        "Resource '*'); active tracing is required by the project")
STREAM_LIST = "dynamodb:ListStreams has no resource-level permissions; the stream event source needs it"


class _Acks:
    """Records (construct path, acknowledged id) of each acknowledgment, so a test can show that
    every one still matches a finding: a stale acknowledgment could cover a future finding."""

    def __init__(self) -> None:
        self.made: list[tuple[str, str]] = []

    def __call__(self, scope: IConstruct, rule: str, reason: str) -> None:
        ack_id = PACK + "AwsSolutions-" + rule
        Validations.of(scope).acknowledge(Acknowledgment(id=ack_id, reason=reason))
        self.made.append((scope.node.path, ack_id))


def _arn_ref(element: IConstruct) -> str:
    """How cdk-nag spells a GetAtt Arn in finding ids: ``<LogicalId.Arn>``."""
    cfn = element.node.default_child
    assert isinstance(cfn, CfnElement)
    return f"<{Stack.of(element).get_logical_id(cfn)}.Arn>"


def acknowledge_findings(stack: PosterflowStack) -> list[tuple[str, str]]:
    """Acknowledge the stack's expected findings; returns (construct path, id) of each."""
    _ack = _Acks()
    _functions(stack, _ack)
    _workflows(stack, _ack)
    _apis(stack, _ack)
    _ack(stack.signing_secret, "SMG4",
         "no rotation Lambda: the secret is a random HMAC key with no external system to update, so it is "
         "rotated by hand with put-secret-value (infra/README.md); functions verify against AWSCURRENT and "
         "AWSPREVIOUS, so links signed before a rotation stay valid for their lifetime")
    return _ack.made


def _functions(stack: PosterflowStack, _ack: _Acks) -> None:
    bucket = _arn_ref(stack.data.bucket)
    table = _arn_ref(stack.jobs.table)
    for key, deployed in stack.functions.by_key.items():
        access = ACCESS[key]
        role = deployed.role
        if key == stack.spec.table.stream_consumer:
            _ack(role, "IAM5[Resource::*]", f"{XRAY}; {STREAM_LIST}")
        else:
            _ack(role, "IAM5[Resource::*]", XRAY)
        if access.bucket:
            for finding, reason in S3_READ_PUT.items():
                _ack(role, f"IAM5[{finding}]", reason)
            _ack(role, f"IAM5[Resource::{bucket}/*]",
                 "objects are addressed by job id and item; the data bucket is this deployment's alone")
        if access.table:
            _ack(role, f"IAM5[Resource::{table}/index/*]",
                 f"queries the table's GSI ({stack.spec.table.gsi_name}: jobs by status, connections by job)")
        if access.bucket_read:
            for finding in ("Action::s3:GetObject*", "Action::s3:GetBucket*", "Action::s3:List*"):
                _ack(role, f"IAM5[{finding}]", S3_READ_PUT[finding])
            _ack(role, f"IAM5[Resource::{bucket}/*]",
                 "read only: presigned GETs of a job's outputs and archive (keys carry tenant and job), on "
                 "this deployment's data bucket alone")
        if access.table_read:
            _ack(role, f"IAM5[Resource::{table}/index/*]",
                 "read only (CDK's read grant covers the GSI); the stream function reads jobs and their SSE "
                 "frame log by key and never queries the index")
        for target in access.invoke:
            _ack(role, f"IAM5[Resource::{_arn_ref(stack.functions[target])}:*]",
                 f"invokes the {target} function (any version/alias of that one function)")
        if access.manage_connections:
            ws = stack.websocket
            api_ref = f"<{stack.get_logical_id(ws.api.node.default_child)}>"  # type: ignore[arg-type]
            _ack(role, "IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
                       f"{api_ref}/{stack.spec.websocket_stage}/*/@connections/*]",
                 "posts to and closes connections of this API's stage only; connection ids are dynamic")
        if deployed.spec.package == "zip":
            _ack(deployed.function, "L1",
                 "Python 3.12 on purpose: the container functions use the Lambda Python 3.12 base image, the "
                 "dependencies layer is built for CPython 3.12 wheels, and pyproject.toml allows <3.13")


def _workflows(stack: PosterflowStack, _ack: _Acks) -> None:
    for sm_key, workflow in stack.workflows.items():
        role = workflow.state_machine.role
        _ack(role, "IAM5[Resource::*]",
             "Step Functions log delivery (logs:*LogDelivery, DescribeLogGroups, resource policies) and X-Ray "
             "have no resource-level permissions; the state machine logs ALL events and is traced")
        for fn_key in stack.spec.state_machine(sm_key).function_substitutions.values():
            _ack(role, f"IAM5[Resource::{_arn_ref(stack.functions[fn_key])}:*]",
                 f"invokes the {fn_key} function (any version/alias of that one function)")


def _apis(stack: PosterflowStack, _ack: _Acks) -> None:
    rest = stack.rest.api
    cw_role = rest.node.find_child("CloudWatchRole")
    _ack(cw_role, "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                  "AmazonAPIGatewayPushToCloudWatchLogs]",
         "the account-level role API Gateway needs for execution/access logs; this AWS-managed policy is the "
         "documented minimal one and is only assumable by apigateway.amazonaws.com")
    _ack(rest, "APIG2",
         "bodies and parameters are validated in the api function by Powertools' resolver with pydantic "
         "models, which return the project's JSON error shape; a gateway validator would answer differently")
    _ack(rest, "APIG3",
         "no WAF web ACL by default (cost per ACL and rule); callers are throttled per API key by the usage "
         "plan and per stage; attach an ACL to the stage where a WAF is mandated")
    for rule in ("APIG4", "COG4"):
        _ack(rest, rule,
             "server-to-server API: the Django backend authenticates with an API key bound to a throttled "
             "usage plan; the key-less routes are /health, the download link, which carries its own "
             "HMAC signature checked by the api function, the two job streams (EventSource cannot send a "
             "key: the stream function checks the job token or the caller's key itself), and the dashboard "
             "page with its script and style files (GET /dashboard, GET /static/{name}: static, no data; the "
             "page sends the user's API key on every data call); there are no end-user accounts for Cognito")
    _ack(stack.websocket.api, "APIG4",
         "browsers connect with ?job_id&token; the progress function checks the HMAC job token on $connect "
         "and refuses the connection otherwise; API Gateway only authorizes $connect, never later routes")
