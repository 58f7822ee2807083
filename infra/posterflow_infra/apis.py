"""The REST API (Django's entry point) and the WebSocket API (progress events)."""

from __future__ import annotations

import json

import jsii
from aws_cdk import Aws, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from posterflow import resources as r

LOG_RETENTION = logs.RetentionDays.ONE_MONTH

# Throttling for the Django caller's usage plan (per API key) and the stage-wide default that
# also covers the two key-less routes. Sync posters take ~0.1-1 s each in render; these bound
# a runaway client well below the account's regional 10,000 rps.
DJANGO_RATE_LIMIT = 50
DJANGO_BURST_LIMIT = 100
STAGE_RATE_LIMIT = 100
STAGE_BURST_LIMIT = 200

# Routes reached without an API key. /health is for load balancers and uptime checks;
# the download link is clicked by email recipients and carries its own HMAC signature; the
# dashboard page and its files hold no data (the page sends the user's key on its data calls;
# posterflow/api/routes_dashboard.py).
PUBLIC_ROUTES: tuple[tuple[str, str], ...] = (("GET", "health"), ("GET", "api/jobs/{job_id}/download"),
                                              ("GET", "dashboard"), ("GET", "static/{name}"))

# Server-Sent Events job streams (seeds 000, 001), served by the stream function, streamed.
STREAM_ROUTES: tuple[str, ...] = ("api/templates/job/{job_id}/stream", "api/batch/jobs/{job_id}/stream")
# API Gateway's longest response stream.
STREAM_TIMEOUT_MIN = 15


def _url(api_id: str, stage: str, scheme: str) -> str:
    """Built from the API id rather than the stage, so functions can carry their own API's
    URL in their environment without a Function → Stage → Method → Function cycle."""
    return Fn.join("", [scheme, "://", api_id, ".execute-api.", Aws.REGION, ".", Aws.URL_SUFFIX, "/", stage])


class RestApi(Construct):
    def __init__(self, scope: Construct, cid: str, *, spec: r.StackSpec) -> None:
        super().__init__(scope, cid)
        self.spec = spec
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=LOG_RETENTION,
                                         removal_policy=RemovalPolicy.DESTROY)
        self.api = apigw.RestApi(
            self, "Api",
            rest_api_name=f"{spec.prefix}-api",
            description="posterflow REST API (proxy to the api function)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            api_key_source_type=apigw.ApiKeySourceType.HEADER,
            # */*: a base64 answer (previews, files) is decoded to bytes whatever the client's
            # first Accept type; every request body reaches the function base64-encoded (the
            # body gate decodes and checks it; multipart ZIP uploads stay bytes).
            binary_media_types=list(spec.api_binary_media_types),
            default_method_options=apigw.MethodOptions(api_key_required=True),
            # Execution and access logs need the account-level CloudWatch role.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.DESTROY,
            deploy_options=apigw.StageOptions(
                stage_name=spec.api_stage,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # request bodies hold personal data
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False, http_method=True, ip=True, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=False),
                throttling_rate_limit=STAGE_RATE_LIMIT,
                throttling_burst_limit=STAGE_BURST_LIMIT,
            ),
        )
        self.url = _url(self.api.rest_api_id, spec.api_stage, "https") + "/"
        # Over API Gateway's 10 MB the function is never called: answer in the API's error shape,
        # naming the presigned upload that takes big ZIPs (the local gateway answers the same).
        self.api.add_gateway_response(
            "RequestTooLarge", type=apigw.ResponseType.REQUEST_TOO_LARGE, status_code="413",
            templates={"application/json": json.dumps(spec.api_too_large_error)})

    def route_to(self, handler: lambda_.IFunction) -> None:
        """Proxy every path to ``handler``; all need the API key except :data:`PUBLIC_ROUTES`.

        API Gateway picks the most specific resource and does not fall back to a greedy
        ``{proxy+}`` higher up, so every static parent of a public route gets its own ANY
        method and ``{proxy+}`` child (``/api/jobs`` cannot have one: ``{job_id}`` is its
        variable child, and one level allows one variable).
        """
        # One invoke permission for the whole API instead of one (or two) per method: every
        # method reaches the same function, and per-method statements approach the size limit
        # of the function's resource policy.
        integration = apigw.LambdaIntegration(handler, proxy=True, scope_permission_to_method=False)
        self._proxy_integration = integration
        root = self.api.root
        root.add_method("ANY", integration)
        root.add_proxy(default_integration=integration, any_method=True)
        for method, path in PUBLIC_ROUTES:
            self._leaf(path).add_method(method, integration, api_key_required=False)

        self._usage_plan()

    def _leaf(self, path: str) -> apigw.IResource:
        """The resource of ``path``; new parents stay on the api function's proxy."""
        parts = path.split("/")
        node: apigw.IResource = self.api.root
        for i, part in enumerate(parts):
            child = node.get_resource(part)
            if child is None:
                child = node.add_resource(part)
                if i < len(parts) - 1:  # a parent of the route stays on the proxy
                    child.add_method("ANY", self._proxy_integration)
                    if not parts[i + 1].startswith("{"):
                        child.add_proxy(default_integration=self._proxy_integration, any_method=True)
            node = child
        return node

    def route_streams_to(self, handler: lambda_.IFunction) -> None:
        """The job streams (:data:`STREAM_ROUTES`) to the stream function, streamed: the
        integration's ``responseTransferMode`` is ``STREAM`` (URI ``…/response-streaming-invocations``),
        so API Gateway relays Lambda Web Adapter's response stream as it is written. No API key
        at the gateway: ``EventSource`` cannot send one; the function checks the job token or the
        key itself."""
        integration = apigw.LambdaIntegration(
            handler, proxy=True, scope_permission_to_method=False,
            response_transfer_mode=apigw.ResponseTransferMode.STREAM,
            # A stream outlives the buffered 29 s; the function ends it before 15 minutes.
            timeout=Duration.minutes(STREAM_TIMEOUT_MIN))
        for path in STREAM_ROUTES:
            self._leaf(path).add_method("GET", integration, api_key_required=False)

    def _usage_plan(self) -> None:
        plan = self.api.add_usage_plan(
            "DjangoPlan",
            name=f"{self.spec.prefix}-django",
            description="The Django backend's key: throttled per key",
            throttle=apigw.ThrottleSettings(rate_limit=DJANGO_RATE_LIMIT, burst_limit=DJANGO_BURST_LIMIT),
        )
        plan.add_api_stage(stage=self.api.deployment_stage)
        self.api_key = self.api.add_api_key("DjangoKey", api_key_name=f"{self.spec.prefix}-django")
        plan.add_api_key(self.api_key)


@jsii.implements(apigwv2.IAccessLogSettings)
class _WebSocketAccessLog:
    """``WebSocketStage`` takes access-log settings as an interface, not a struct."""

    FORMAT = json.dumps({
        "requestId": "$context.requestId",
        "connectionId": "$context.connectionId",
        "eventType": "$context.eventType",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "requestTime": "$context.requestTime",
        "ip": "$context.identity.sourceIp",
        "integrationError": "$context.integrationErrorMessage",
    })

    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(self.FORMAT)


class WebSocketApi(Construct):
    def __init__(self, scope: Construct, cid: str, *, spec: r.StackSpec, logging_ready: IConstruct | None) -> None:
        super().__init__(scope, cid)
        self.spec = spec
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=LOG_RETENTION,
                                         removal_policy=RemovalPolicy.DESTROY)
        self.api = apigwv2.WebSocketApi(self, "Api", api_name=f"{spec.prefix}-progress",
                                        description="posterflow progress events")
        self.stage = apigwv2.WebSocketStage(
            self, "Stage",
            web_socket_api=self.api,
            stage_name=spec.websocket_stage,
            auto_deploy=True,
            access_log_settings=_WebSocketAccessLog(self.access_logs),
            throttle=apigwv2.ThrottleSettings(rate_limit=STAGE_RATE_LIMIT, burst_limit=STAGE_BURST_LIMIT),
        )
        if logging_ready is not None:
            # Access logging needs the account's API Gateway CloudWatch role to exist first.
            self.stage.node.add_dependency(logging_ready)
        self.url = _url(self.api.api_id, spec.websocket_stage, "wss")
        # The @connections management endpoint that the progress function posts to.
        self.callback_url = _url(self.api.api_id, spec.websocket_stage, "https")

    def route_to(self, handler: lambda_.IFunction) -> None:
        integration = integrations.WebSocketLambdaIntegration("Progress", handler)
        for route in ("$connect", "$disconnect", "$default"):
            self.api.add_route(route, integration=integration)

    def grant_manage_connections(self, grantee: iam.IGrantable) -> None:
        """Only this API's stage, not every API in the account."""
        grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
            actions=["execute-api:ManageConnections"],
            resources=[Stack.of(self).format_arn(
                service="execute-api", resource=self.api.api_id,
                resource_name=f"{self.spec.websocket_stage}/*/@connections/*")],
        ))
