"""The local cloud's signing secret: random per installation, kept 0600 under the out dir,
served from the embedded Secrets Manager by ARN exactly as in AWS, and stable across restarts."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from posterflow import aws, config, jobs, tokens
from posterflow_local.provision import SIGNING_SECRET_FILE
from tests.integration.helpers import api

OLD_CONSTANT = b"posterflow-local-dev-secret"


def _forged_download_token(job_id: str, expires: int = 9_999_999_999) -> str:
    """What anyone could mint while the secret was a constant in the source."""
    return tokens.download_token(job_id, ttl_s=expires, now=0, secret=OLD_CONSTANT)


def test_link_forged_with_the_old_constant_is_refused(cloud: Any) -> None:
    job = jobs.create_job("poster", total=1)
    status, body, _ = api(cloud, "GET", f"/api/jobs/{job.job_id}/download?token={_forged_download_token(job.job_id)}")
    assert status == 403 and body["error"]["code"] == "invalid_token"
    # A genuine link of the same job gets past the token check (the archive is not there yet).
    status, body, _ = api(cloud, "GET", f"/api/jobs/{job.job_id}/download?token={tokens.download_token(job.job_id)}")
    assert status == 409 and body["error"]["code"] == "archive_not_ready"


def test_webhook_secret_is_not_derived_from_the_old_constant(cloud: Any) -> None:
    status, body, _ = api(cloud, "GET", "/api/webhook-secret")
    assert status == 200
    guessable = hmac.new(OLD_CONSTANT, b"webhook:default", hashlib.sha256).hexdigest()
    assert body["secret"] != guessable


def test_functions_get_the_arn_and_the_value_lives_in_secrets_manager(cloud: Any) -> None:
    arn = cloud.environment[config.ENV_SIGNING_SECRET_ARN]
    assert arn.startswith("arn:aws:secretsmanager:")
    secret_file = cloud.options.out_dir / SIGNING_SECRET_FILE
    value = secret_file.read_text().strip()
    assert len(value) >= 43  # 256 bits, URL-safe base64
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    stored = aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    assert stored == value
    for name in cloud.runtime.names():
        env = cloud.runtime.get(name).environment
        if name in {fn.name for fn in cloud.spec.functions}:
            assert env[config.ENV_SIGNING_SECRET_ARN] == arn, name
        assert value not in env.values(), name
        assert config.ENV_SIGNING_SECRET not in env, name


_START = textwrap.dedent("""
    import json, sys, urllib.error, urllib.request
    from pathlib import Path
    from posterflow import tokens
    from posterflow_local.cloud import CloudOptions, LocalCloud

    out, link = Path(sys.argv[1]), sys.argv[2]
    options = CloudOptions(aws_port=0, api_port=0, ws_port=0, out_dir=out, event_sources=False)
    with LocalCloud(options) as cloud:
        status = 0
        if link:
            url = f"{cloud.gateway.rest_url}/api/jobs/job-kept/download?token={link}"
            try:
                status = urllib.request.urlopen(url, timeout=60).status
            except urllib.error.HTTPError as exc:
                status = exc.code
                code = json.loads(exc.read())["error"]["code"]
        print(json.dumps({"link": tokens.download_token("job-kept"), "status": status,
                          "code": code if status >= 400 else None}))
""")


def _start_cloud(out: Path, link: str = "") -> dict[str, Any]:
    """One ``posterflow up``-like start in its own process (a second cloud in this process would
    take over the session cloud's endpoint)."""
    env_free = {k: v for k, v in os.environ.items()
                if k not in (config.ENV_SIGNING_SECRET, config.ENV_SIGNING_SECRET_ARN, "AWS_ENDPOINT_URL")}
    done = subprocess.run([sys.executable, "-c", _START, str(out), link], capture_output=True, text=True,
                          timeout=120, env=env_free, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_secret_is_created_once_and_reused_across_restarts(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = _start_cloud(out)
    secret_file = out / SIGNING_SECRET_FILE
    value = secret_file.read_text()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    second = _start_cloud(out, first["link"])
    assert secret_file.read_text() == value
    # The emailed link of the first run passes the token check after the restart; the job
    # only lives in the first run's memory, so the answer is "no such job", not "invalid".
    assert second["code"] != "invalid_token" and second["status"] == 404, second
    other = _start_cloud(tmp_path / "other-out", first["link"])
    assert (tmp_path / "other-out" / SIGNING_SECRET_FILE).read_text() != value
    assert other["code"] == "invalid_token", other
