"""The local cloud: embedded AWS + Lambda runtime + event sources + API Gateway, wired from
the one resource spec. ``posterflow up`` and the integration tests both start it from here.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posterflow import config
from posterflow import resources as r
from posterflow_local import patches
from posterflow_local.apigw import ApiGateway
from posterflow_local.embedded_aws import EmbeddedAWS, ensure_port_free
from posterflow_local.event_sources import DynamoStreamPoller, SqsPoller
from posterflow_local.faults import FaultConfig, Faults
from posterflow_local.function_logs import route_function_output
from posterflow_local.lambda_api import lambda_invoke_middleware
from posterflow_local.lambda_runtime import Handler, LambdaRuntime, LocalFunction, module_loader
from posterflow_local.provision import local_signing_secret, provision, provision_signing_secret

log = logging.getLogger("posterflow.local")
# The dashboard page is package data of the library: the deployed API serves the same files.
STATIC_DIR = r.REPO_ROOT / "layers" / "core" / "python" / "posterflow" / "api" / "dashboard"
# Garbage-collector thresholds while a local cloud runs (see LocalCloud.start).
LOCAL_GC_THRESHOLD = (20_000, 50, 100)


@dataclass
class CloudOptions:
    host: str = "127.0.0.1"
    aws_port: int = 4566
    api_port: int = 8000
    ws_port: int = 8001
    out_dir: Path = Path("out")
    prefix: str = r.PROJECT
    # Start the event-source pollers (off only for tests that drive functions by hand).
    event_sources: bool = True
    concurrency: dict[str, int] = field(default_factory=dict)
    # Fault injection at start (None: off); tests switch it later through ``LocalCloud.faults``.
    faults: FaultConfig | None = None
    # Let templates run JavaScript (POSTERFLOW_TEMPLATE_JAVASCRIPT=allow); off as in AWS.
    template_javascript: bool = False
    # Where what functions print goes, one file per function as CloudWatch Logs keeps a log
    # group (None: this process's stdout, which the tests capture).
    function_logs: Path | None = None


class LocalCloud:
    def __init__(self, options: CloudOptions | None = None) -> None:
        self.options = options or CloudOptions()
        self.spec = r.stack_spec(self.options.prefix)
        self.runtime = LambdaRuntime()
        self.faults = Faults(self.runtime, self.options.faults)
        # Lambda Invoke is outermost, so invocations never meet an injected fault.
        self.aws = EmbeddedAWS(self.options.host, self.options.aws_port,
                               middleware=(self.faults.middleware(), lambda_invoke_middleware(self.runtime)))
        self.gateway = ApiGateway(
            self.runtime, self.spec.function("api").name, self.spec.function("progress").name,
            host=self.options.host, rest_port=self.options.api_port, ws_port=self.options.ws_port,
            stage=self.spec.api_stage, static_dir=STATIC_DIR if STATIC_DIR.exists() else None,
        )
        self.sqs_pollers: list[SqsPoller] = []
        self._function_output: contextlib.AbstractContextManager[Any] | None = None
        self.stream_poller: DynamoStreamPoller | None = None
        self.refs: r.ResourceRefs | None = None
        self._stopping = threading.Event()
        self._gc_threshold = gc.get_threshold()
        self.environment: dict[str, str] = {}
        # Variables every function gets on top of the spec's (the signing secret's ARN).
        self.extra_environment: dict[str, str] = {}
        self._stop_stream_function: Callable[[], None] | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> LocalCloud:
        o = self.options
        if o.function_logs is not None and self._function_output is None:
            # Before any handler is imported: Powertools' Logger keeps the stdout it was made with.
            self._function_output = route_function_output(o.function_logs)
            self._function_output.__enter__()
        try:
            return self._start()
        except BaseException:
            if self._function_output is not None:
                self._function_output.__exit__(None, None, None)
                self._function_output = None
            raise

    def _start(self) -> LocalCloud:
        o = self.options
        ensure_port_free(o.host, o.api_port, "API")
        ensure_port_free(o.host, o.ws_port, "WS")
        # Every moto patch, and the mail directory (refuses an unsupported moto version).
        patches.install_all(mail_dir=o.out_dir / "mail")
        # One process holds every emulated service's state (tens of thousands of moto objects)
        # and every function instance. At CPython's default gen-0 threshold (700 allocations)
        # the collector ran ~80 times a second in a 1,000-poster batch: 2.8 s of a 32 s run,
        # holding the GIL that Chromium's driver threads wait for. 20,000 cut that to 1.2 s.
        self._gc_threshold = gc.get_threshold()
        gc.set_threshold(*LOCAL_GC_THRESHOLD)
        self.aws.start()
        self.gateway.start()
        refs = provision(self.spec, self.aws.endpoint)
        self.refs = refs.model_copy(update={
            "websocket_endpoint": self.gateway.management_endpoint,
            "websocket_url": self.gateway.ws_url,
            "api_url": self.gateway.rest_url,
        })
        # The secret's ARN, as the stack passes it: functions read the value from (embedded)
        # Secrets Manager, so the local cloud runs the same code path as AWS.
        secret_arn = provision_signing_secret(self.spec, local_signing_secret(o.out_dir))
        # No X-Ray daemon here: Powertools Tracer only passes calls through (metrics still print
        # their EMF lines to standard output, as in AWS).
        self.extra_environment = {config.ENV_SIGNING_SECRET_ARN: secret_arn,
                                  config.POWERTOOLS_TRACE_DISABLED.name: "true"}
        if o.template_javascript:
            self.extra_environment[r.ENV_TEMPLATE_JAVASCRIPT] = "allow"
        # No API key is needed on the local cloud: key-less job streams are the default tenant's.
        self.extra_environment[config.SSE_KEYLESS.name] = "default"
        # Every function gets the same resource variables; only the Powertools service name
        # differs, and that is applied while each handler module is imported.
        self.environment = {**r.function_environment(self.spec, self.spec.function("api"), self.refs),
                            **self.extra_environment}
        os.environ.update(self.environment)
        for fn in self.spec.functions:
            if fn.invoke_mode == "response_stream":
                continue  # an HTTP server, not a handler: started below, behind the gateway
            self._register_spec_function(fn)
        self._start_stream_function()
        if o.event_sources:
            self._start_event_sources()
        return self

    def _start_stream_function(self) -> None:
        """The stream function as Lambda Web Adapter runs it: its HTTP server on a loopback port,
        which the REST gateway proxies the job stream routes to."""
        from posterflow.progress import sse_server

        server, self._stop_stream_function = sse_server.start_in_thread(self.options.host, 0)
        self.gateway.stream_url = f"http://{self.options.host}:{server.server_port}"

    def stop(self) -> None:
        self._stopping.set()
        for p in self.sqs_pollers:
            p._stop.set()
        if self.stream_poller:
            self.stream_poller.stop()
        for p in self.sqs_pollers:
            p.stop()
        if self._stop_stream_function is not None:
            # First: its open streams end, so the gateway's proxies of them finish too.
            self._stop_stream_function()
            self._stop_stream_function = None
        self.gateway.stop()
        self.aws.stop()
        # With nothing running any more: moto's own code again, for whatever runs next in this process.
        patches.remove_all()
        gc.set_threshold(*self._gc_threshold)
        if self._function_output is not None:
            self._function_output.__exit__(None, None, None)
            self._function_output = None

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- functions -------------------------------------------------------------------------
    def _register_spec_function(self, fn: r.FunctionSpec) -> None:
        module_file, attribute = fn.handler.rsplit(".", 1)
        env = r.function_environment(self.spec, fn, self.refs) if self.refs else {}
        env.update(self.extra_environment)
        env.update({
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
        })
        self.runtime.register(LocalFunction(
            name=fn.name, memory_mb=fn.memory_mb, timeout_s=fn.timeout_s,
            concurrency=self.options.concurrency.get(fn.key, fn.local_concurrency),
            environment=env,
            load=module_loader(fn.directory / f"{module_file}.py", attribute, env),
        ))

    def register_function(self, name: str, handler: Handler | Callable[[], Handler], *, timeout_s: int = 30,
                          memory_mb: int = 128, concurrency: int = 1, factory: bool = False) -> LocalFunction:
        """Add a function outside the spec (tests, tools). ``factory=True`` builds a fresh
        handler per instance, as a module import would."""
        load: Callable[[], Handler] = handler if factory else (lambda: handler)  # type: ignore[assignment,return-value]
        fn = LocalFunction(name=name, memory_mb=memory_mb, timeout_s=timeout_s, concurrency=concurrency,
                           environment={}, load=load)
        self.runtime.register(fn)
        return fn

    def add_sqs_source(self, queue_url: str, function_name: str, *, batch_size: int = 10,
                       concurrency: int | None = None, wait_time_s: int = 1) -> SqsPoller:
        fn = self.runtime.get(function_name)
        poller = SqsPoller(queue_url=queue_url, function=fn, batch_size=batch_size,
                           concurrency=concurrency or fn.concurrency, wait_time_s=wait_time_s,
                           hook=self.faults.sqs_hook)
        poller.start()
        self.sqs_pollers.append(poller)
        return poller

    def _start_event_sources(self) -> None:
        assert self.refs is not None
        for q in self.spec.queues:
            if q.consumer:
                # Each lane has pollers of its own (QueueSpec.local_concurrency), as each has its
                # own event source in AWS: a busy normal lane never holds the urgent lane's.
                self.add_sqs_source(self.refs.queue_urls[q.key], self.spec.function(q.consumer).name,
                                    batch_size=q.batch_size, concurrency=q.local_concurrency)
            # Messages that exhausted their retries: the DLQ consumer records the failure.
            self.add_sqs_source(self.refs.queue_urls[f"{q.key}_dlq"], self.spec.function(self.spec.dlq_consumer).name,
                                batch_size=self.spec.dlq_batch_size, concurrency=1)
        t = self.spec.table
        self.stream_poller = DynamoStreamPoller(t.name, self.runtime.get(self.spec.function(t.stream_consumer).name),
                                                batch_size=t.stream_batch_size)
        self.stream_poller.start()
        threading.Thread(target=self._heartbeats, name="heartbeat", daemon=True).start()
        threading.Thread(target=self._sweeps, name="sweep", daemon=True).start()

    def _sweeps(self) -> None:
        """The scheduled rule of the stack: fail the outstanding items of stalled jobs."""
        name = self.spec.function(self.spec.dlq_consumer).name
        while not self._stopping.wait(self.spec.sweep_interval_s):
            result = self.runtime.invoke(name, {"action": "sweep"})
            if result.failed:
                log.warning("sweep failed: %s: %s", result.error_type, result.error_message)

    def _heartbeats(self) -> None:
        """The scheduled rule of the stack: heartbeats to every connection of an active job."""
        name = self.spec.function(self.spec.table.stream_consumer).name
        while not self._stopping.wait(self.spec.heartbeat_interval_s):
            result = self.runtime.invoke(name, {"action": "heartbeat"})
            if result.failed:
                log.warning("heartbeat failed: %s: %s", result.error_type, result.error_message)

    # ---- handy facts -----------------------------------------------------------------------
    def endpoints(self) -> dict[str, Any]:
        assert self.refs is not None
        return {
            "aws": self.aws.endpoint,
            "api": self.gateway.rest_url,
            "websocket": self.gateway.ws_url,
            "connections_api": self.gateway.management_endpoint,
            "bucket": self.refs.bucket,
            "table": self.refs.table,
            "mail": str((self.options.out_dir / "mail").resolve()),
        }

    def invoke(self, function: str, event: Any) -> Any:
        name = self.spec.function(function).name if function in {f.key for f in self.spec.functions} else function
        return self.runtime.invoke(name, event)

