"""Embedded AWS: moto's server in-process on 127.0.0.1, with posterflow's middleware in front.

Every boto3 client reads its endpoint from ``AWS_ENDPOINT_URL``, so once :meth:`start` has
set the environment, library code talks to this server exactly as it talks to AWS.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from posterflow import aws, config
from posterflow_local.patches import inprocess_transport as inprocess

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Any]
Middleware = Callable[[WSGIApp], WSGIApp]


class PortInUseError(RuntimeError):
    pass


def ensure_port_free(host: str, port: int, what: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise PortInUseError(
                f"{what} port {port} on {host} is already in use; pick another with --{what.lower()}-port"
                if what != "API"
                else f"API port {port} on {host} is already in use; pick another with --port"
            ) from exc


def fake_credentials() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        config.AWS_DEFAULT_REGION.name: config.AWS_DEFAULT_REGION.required(),
        config.AWS_REGION.name: config.aws_region(),
    }


class EmbeddedAWS:
    def __init__(self, host: str = "127.0.0.1", port: int = 4566,
                 middleware: tuple[Middleware, ...] = (), in_process: bool = True) -> None:
        self.host = host
        self.port = port
        # This process's own boto3 clients skip the loopback socket (see patches/inprocess_transport.py).
        self.in_process = in_process
        self._middleware = middleware
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        ensure_port_free(self.host, self.port, "AWS")
        app: WSGIApp = DomainDispatcherApplication(create_backend_app)
        for wrap in self._middleware:
            app = wrap(app)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = make_server(self.host, self.port, app, threaded=True,
                                   request_handler=MotoRequestHandler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-aws",
                                        daemon=True)
        self._thread.start()
        if self.in_process:
            inprocess.serve(self._netloc, app)
        os.environ.update(fake_credentials())
        os.environ[config.AWS_ENDPOINT_URL.name] = self.endpoint
        # moto's Step Functions interpreter calls Lambda back over HTTP on this port.
        os.environ["MOTO_PORT"] = str(self.port)
        aws.reset_clients()
        self._post_config({"stepfunctions": {"execute_state_machine": True}})

    def _post_config(self, config: dict[str, Any]) -> None:
        req = urllib.request.Request(
            f"{self.endpoint}/moto-api/config", data=json.dumps(config).encode(),
            headers={"Content-Type": "application/json"}, method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    @property
    def _netloc(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self) -> None:
        inprocess.stop(self._netloc)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
