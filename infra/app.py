"""posterflow CDK app. `python infra/app.py` synthesizes to cdk.out exactly as `cdk synth` does.

    python infra/app.py                          # context from cdk.json
    python infra/app.py -c posterflow:retentionDays=7
    POSTERFLOW_SKIP_BUNDLING=1 python infra/app.py   # offline, no dependencies layer (checks only)
    CDK_VALIDATION=false python infra/app.py     # skip CDK's built-in template validation (faster)

A bad or missing context value ends with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "layers" / "core" / "python")]
# The jsii runtime prints a banner about Node 20 to every process; the project knows.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


def _context_arg(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Synthesize the posterflow stack to cdk.out")
    parser.add_argument("-c", "--context", action="append", type=_context_arg, default=[],
                        metavar="KEY=VALUE", help="override a cdk.json context value")
    parser.add_argument("-o", "--output", help="output directory (default: cdk.out)")
    args = parser.parse_args(argv)

    from posterflow_infra.bundling import SKIP_BUNDLING_ENV, BundlingError
    from posterflow_infra.functions import MissingSourceError
    from posterflow_infra.settings import ContextError
    from posterflow_infra.workflow import DefinitionError

    try:
        from posterflow_infra.builder import build_app, skip_bundling_requested

        app, _stack = build_app(dict(args.context), outdir=args.output)
        app.synth()
    except ContextError as exc:
        print(f"posterflow synth: bad context: {exc}", file=sys.stderr)
        return 2
    except (MissingSourceError, DefinitionError, BundlingError) as exc:
        print(f"posterflow synth: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        # Errors raised inside CDK (failed bundling, a validation report already printed above)
        # arrive wrapped by jsii; the first line says what happened, the JavaScript stack does not.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"posterflow synth: {first.removeprefix('@jsii/kernel.RuntimeError: ')}", file=sys.stderr)
        return 1
    if skip_bundling_requested():
        print(f"posterflow synth: {SKIP_BUNDLING_ENV} is set: the dependencies layer was not built; "
              "this cloud assembly is for checks, do not deploy it", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
