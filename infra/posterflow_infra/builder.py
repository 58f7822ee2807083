"""Build the CDK app: context → validated settings → stack → cdk-nag. Shared by app.py and tests."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from posterflow_infra.bundling import SKIP_BUNDLING_ENV
from posterflow_infra.nag import acknowledge_findings
from posterflow_infra.paths import CDK_JSON, DEFAULT_OUTDIR
from posterflow_infra.settings import (
    CTX_ALARM_EMAIL,
    CTX_PREFIX,
    CTX_RESERVED_CONCURRENCY,
    CTX_RETENTION_DAYS,
    CTX_SES_SENDER,
    ContextError,
    parse_settings,
)
from posterflow_infra.stack import PosterflowStack

STACK_ID = "Posterflow"
# CDK's own switch (what `cdk synth --exclusively` sets): stacks not listed skip bundling.
BUNDLING_STACKS_CONTEXT = "aws:cdk:bundling-stacks"


def file_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The ``context`` block of cdk.json: what the CLI would pass, for `python infra/app.py`."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise ContextError(f"{path.name} is not valid JSON: {exc}") from None
    context = data.get("context", {})
    if not isinstance(context, dict):
        raise ContextError(f"{path.name}: 'context' must be an object")
    return context


def skip_bundling_requested() -> bool:
    return os.environ.get(SKIP_BUNDLING_ENV, "").strip().lower() in ("1", "true", "yes")


def build_app(
    overrides: Mapping[str, Any] | None = None,
    *,
    outdir: str | None = None,
    nag: bool = True,
    skip_bundling: bool | None = None,
    cfn_validation: bool | None = None,
) -> tuple[cdk.App, PosterflowStack]:
    """cdk.json context, then ``overrides`` (the -c flags); the CLI's own context wins over both.

    ``skip_bundling`` and ``cfn_validation`` default to the environment (``POSTERFLOW_SKIP_BUNDLING``,
    ``CDK_VALIDATION``); tests pass them explicitly to stay fast and offline.
    """
    context = {**file_context(), **(overrides or {})}
    if skip_bundling if skip_bundling is not None else skip_bundling_requested():
        context[BUNDLING_STACKS_CONTEXT] = []
    # Under the CLI, CDK_OUTDIR is set and must be honoured; otherwise write where `cdk` would.
    app = cdk.App(context=context, outdir=outdir or os.environ.get("CDK_OUTDIR") or str(DEFAULT_OUTDIR),
                  builtin_cloud_formation_validation=cfn_validation)
    settings = parse_settings({k: app.node.try_get_context(k)
                               for k in (CTX_PREFIX, CTX_RETENTION_DAYS, CTX_SES_SENDER, CTX_ALARM_EMAIL,
                                         CTX_RESERVED_CONCURRENCY)})
    stack = PosterflowStack(app, STACK_ID, stack_name=settings.prefix, settings=settings)
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
        stack.nag_acknowledgments = acknowledge_findings(stack)
    return app, stack
