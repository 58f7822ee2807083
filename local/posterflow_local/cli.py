"""The ``posterflow`` command: run the local cloud, invoke functions, run the demo.

    posterflow up                     # the whole system on this machine, until Ctrl-C
    posterflow invoke api events/api/health.json
    posterflow demo                   # the main job end to end
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from posterflow import resources as r


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def _cloud_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument("--aws-port", type=int, default=4566, help="embedded AWS port (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="REST API port (default: %(default)s)")
    p.add_argument("--ws-port", type=int, default=8001, help="WebSocket API port (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder for mail and files (default: ./out)")
    p.add_argument("--allow-template-javascript", action="store_true",
                   help="let templates run JavaScript (POSTERFLOW_TEMPLATE_JAVASCRIPT=allow; default off)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posterflow",
        description="posterflow: data → posters and face crops, on AWS serverless or on this machine's local cloud.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="run the local cloud until Ctrl-C",
                        description="Start the embedded AWS, the Lambda runtime, event sources and the "
                                    "REST + WebSocket APIs, print the endpoints, and serve until Ctrl-C.")
    _cloud_args(up)

    inv = sub.add_parser("invoke", help="run one function once with an event file (like sam local invoke)",
                         description="Invoke FUNCTION with the JSON event in EVENT. Uses a local cloud already "
                                     "running on --aws-port if there is one, else starts a temporary one.")
    inv.add_argument("function", help="function key (api, splitter, render, crop, progress, finalize, dlq) or name")
    inv.add_argument("event", type=Path, help="JSON event file (see events/)")
    _cloud_args(inv)

    demo = sub.add_parser("demo", help="run the main job end to end on the local cloud",
                          description="Boot the local cloud, crop a ZIP of headshots dropped into S3, render the "
                                      "200-speaker CSV as posters with those crops as profile photos, and write "
                                      "posters, crops, mail and a summary under --out.")
    _cloud_args(demo)

    watch = sub.add_parser("watch", help="follow a job's progress on a running local cloud or API",
                           description="Draw a job's live progress (WebSocket, falling back to polling the API) "
                                       "until it ends; print the final job as JSON.")
    watch.add_argument("job_id")
    watch.add_argument("--token", help="the job's token (default: read from the API)")
    watch.add_argument("--api", default="http://127.0.0.1:8000", help="REST API base URL (default: %(default)s)")
    watch.add_argument("--ws", default="ws://127.0.0.1:8001", help="WebSocket URL (default: %(default)s)")
    return parser


def _read_event(path: Path) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise CliError(f"event file {path} does not exist") from None
    except OSError as exc:
        raise CliError(f"cannot read event file {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise CliError(f"event file {path} is not valid JSON: {exc.msg} at {where}") from None


def _function_name(key_or_name: str) -> str:
    spec = r.stack_spec()
    for fn in spec.functions:
        if key_or_name in (fn.key, fn.name):
            return fn.name
    known = ", ".join(fn.key for fn in spec.functions)
    raise CliError(f"unknown function {key_or_name!r}; choose one of: {known}")


def _running_cloud(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/moto-api/", timeout=0.5) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def cmd_invoke(args: argparse.Namespace) -> int:
    event = _read_event(args.event)
    name = _function_name(args.function)
    if _running_cloud(args.host, args.aws_port):
        import boto3

        client = boto3.client("lambda", endpoint_url=f"http://{args.host}:{args.aws_port}", region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        resp = client.invoke(FunctionName=name, Payload=json.dumps(event).encode())
        payload = json.loads(resp["Payload"].read() or b"null")
        print(json.dumps(payload, indent=2, default=str))
        return 1 if resp.get("FunctionError") else 0
    from posterflow_local.cloud import CloudOptions, LocalCloud

    with LocalCloud(CloudOptions(host=args.host, aws_port=0, api_port=0, ws_port=0, out_dir=args.out,
                                 event_sources=False)) as cloud, contextlib.redirect_stdout(sys.stderr):
        # The function's own output (Powertools log and EMF metric lines) goes to stderr, as
        # `sam local invoke` prints logs: stdout carries only the answer.
        result = cloud.runtime.invoke(name, event)
    if result.failed:
        print(json.dumps(result.error_payload(), indent=2), file=sys.stderr)
        return 1
    print(json.dumps(result.payload, indent=2, default=str))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from posterflow_local.cloud import CloudOptions, LocalCloud

    logs = args.out / "logs"
    cloud = LocalCloud(CloudOptions(host=args.host, aws_port=args.aws_port, api_port=args.port,
                                    ws_port=args.ws_port, out_dir=args.out, function_logs=logs,
                                    template_javascript=args.allow_template_javascript))
    cloud.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("posterflow local cloud is up:")
    for k, v in cloud.endpoints().items():
        print(f"  {k:16} {v}")
    print(f"  {'function logs':16} {logs}/<function>.log (Powertools log lines and EMF metrics)")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        cloud.stop()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from posterflow_local.demo import run_demo

    return run_demo(args)


def cmd_watch(args: argparse.Namespace) -> int:
    from posterflow_local.watch import fetch_job, watch

    try:
        token = args.token or fetch_job(args.api, args.job_id).get("token")
    except urllib.error.HTTPError as exc:
        raise CliError(f"job {args.job_id}: the API answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise CliError(f"cannot reach the API at {args.api}: {exc}") from None
    if not token:
        raise CliError(f"job {args.job_id} has no token; pass --token")
    job = watch(args.api, args.ws, args.job_id, token)
    print(json.dumps(job, indent=2))
    return 0 if job.get("status") in {"completed", "completed_with_errors"} else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from posterflow_local.embedded_aws import PortInUseError

    commands = {"up": cmd_up, "invoke": cmd_invoke, "demo": cmd_demo, "watch": cmd_watch}
    try:
        return commands[args.command](args)
    except (CliError, PortInUseError) as exc:
        print(f"posterflow: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
