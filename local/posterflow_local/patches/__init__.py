"""Every change the local cloud makes to moto (and botocore), in one place.

Each module patches one thing, says in its docstring what moto does, what the patch changes
and which test compares the two, and declares ``PATCH`` (a :class:`~._patch.Patch`).
``LocalCloud.start`` calls :func:`install_all`, ``LocalCloud.stop`` :func:`remove_all`.

The patches replace moto internals, so they are written against one moto minor version:
:func:`install_all` refuses any other (pyproject.toml pins the same range).
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from types import ModuleType

from posterflow_local.patches._patch import Patch

# The moto versions the patches were written and tested against: [MIN, BELOW).
SUPPORTED_MOTO_MIN = (5, 2, 5)
SUPPORTED_MOTO_BELOW = (5, 3, 0)

# Patch modules, in install order (the order LocalCloud.start used).
MODULES = (
    "sqs",
    "dynamodb_transactions",
    "dispatch",
    "s3_ranges",
    "dynamodb_serialize",
    "dynamodb_update_expressions",
    "dynamodb_query",
    "dynamodb_item_sizes",
    "ses_mailbox",
    "inprocess_transport",
)


class UnsupportedMotoVersion(RuntimeError):
    pass


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def supported_range() -> str:
    return f">={_dotted(SUPPORTED_MOTO_MIN)},<{_dotted(SUPPORTED_MOTO_BELOW[:2])}"


def installed_moto_version() -> str:
    import moto

    return str(moto.__version__)


def check_moto_version(version: str | None = None) -> None:
    """Raise :class:`UnsupportedMotoVersion` unless moto is in the supported range."""
    found = installed_moto_version() if version is None else version
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", found)
    parsed = tuple(int(x or 0) for x in match.groups()) if match else None
    if parsed is None or not SUPPORTED_MOTO_MIN <= parsed < SUPPORTED_MOTO_BELOW:
        raise UnsupportedMotoVersion(
            f"moto {found} is installed, but the local cloud's moto patches support moto{supported_range()} "
            "only (they replace moto internals). Run `make setup` to install the locked version.")


def _module(name: str) -> ModuleType:
    # Imported only after the version check: on another moto a patch module may not import.
    return importlib.import_module(f"{__name__}.{name}")


def patches() -> list[Patch]:
    found: list[Patch] = []
    for name in MODULES:
        patch = getattr(_module(name), "PATCH", None)
        assert isinstance(patch, Patch), name
        found.append(patch)
    return found


def install_all(mail_dir: Path | None = None) -> None:
    """Check moto's version, then install every patch (idempotent). Sent mail goes to
    ``mail_dir`` as .eml files when given."""
    check_moto_version()
    for patch in patches():
        patch.install()
    if mail_dir is not None:
        _module("ses_mailbox").deliver_to(mail_dir)


def remove_all() -> None:
    """moto's (and botocore's) own code again, everywhere (idempotent)."""
    # Only modules already imported can have installed anything (and importing one on an
    # unsupported moto could fail).
    loaded = [sys.modules.get(f"{__name__}.{name}") for name in reversed(MODULES)]
    for module in loaded:
        if module is not None:
            module.PATCH.remove()
    mailbox = sys.modules.get(f"{__name__}.ses_mailbox")
    if mailbox is not None:
        mailbox.deliver_to(None)
