"""The local cloud's moto patches: each one installs, installs again harmlessly and comes off
leaving moto's (and botocore's) own objects in place; the moto version is checked first."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest

from posterflow import resources as r
from posterflow_local import patches
from posterflow_local.patches._patch import Patch, Replacement


@pytest.fixture
def unpatched() -> Iterator[None]:
    """moto without the patches for a test, then as it was: in a whole-suite run the session's
    local cloud (started by the integration tests) has them installed in this process."""
    from posterflow_local.patches import ses_mailbox

    was_installed = any(p.installed for p in patches.patches())
    mail_dir = ses_mailbox._mail_dir
    patches.remove_all()
    try:
        yield
    finally:
        patches.remove_all()
        if was_installed:  # as install_all did (its version check may be monkeypatched by now)
            for patch in patches.patches():
                patch.install()
            ses_mailbox.deliver_to(mail_dir)


def _own(owner: Any, attribute: str) -> Any:
    return vars(owner).get(attribute, "<inherited>")


def test_remove_all_puts_moto_back_and_install_twice_is_harmless(unpatched: None) -> None:
    from botocore import handlers
    from moto.dynamodb.models.table import Table
    from moto.sqs.models import Queue, SQSBackend

    assert not any(p.installed for p in patches.patches())
    # moto's own objects, read before any patch touched them.
    targets = [(rp.owner, rp.attribute) for p in patches.patches() for rp in p.replacements()]
    before = {(id(o), a): _own(o, a) for o, a in targets}
    known = (SQSBackend.receive_message, vars(Queue)["messages"], Table.query, handlers.BUILTIN_HANDLERS)
    assert len(targets) >= 20

    patches.install_all()
    first = {(id(o), a): _own(o, a) for o, a in targets}
    patches.install_all()
    assert {(id(o), a): _own(o, a) for o, a in targets} == first  # the second install changed nothing
    assert all(first[k] is not before[k] for k in before), "every replacement is in place"
    assert handlers.BUILTIN_HANDLERS.count(handlers.BUILTIN_HANDLERS[-1]) == 1

    patches.remove_all()
    patches.remove_all()
    for owner, attribute in targets:
        assert _own(owner, attribute) is before[(id(owner), attribute)], (owner, attribute)
    assert (SQSBackend.receive_message, vars(Queue)["messages"], Table.query, handlers.BUILTIN_HANDLERS) == known
    assert not any(p.installed for p in patches.patches())


def test_an_inherited_attribute_is_inherited_again() -> None:
    class Base:
        def f(self) -> str:
            return "base"

    class Child(Base):
        pass

    patch = Patch("t", [Replacement(Child, "f", lambda self: "patched")])
    patch.install()
    assert Child().f() == "patched" and "f" in vars(Child)
    patch.remove()
    assert "f" not in vars(Child) and Child().f() == "base"


def test_a_missing_attribute_fails_at_declaration() -> None:
    class Owner:
        pass

    with pytest.raises(AttributeError, match=r"'gone'.*supported version"):
        Patch("t", [Replacement(Owner, "gone", None)])


@pytest.mark.parametrize("version", ["5.1.9", "5.2.4", "5.3.0", "6.0.0", "not-a-version"])
def test_install_refuses_an_unsupported_moto(version: str, unpatched: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import moto

    monkeypatch.setattr(moto, "__version__", version)
    with pytest.raises(patches.UnsupportedMotoVersion) as err:
        patches.install_all()
    message = str(err.value)
    assert f"moto {version} is installed" in message
    assert "moto>=5.2.5,<5.3" in message and "make setup" in message
    assert not any(p.installed for p in patches.patches())


@pytest.mark.parametrize("version", ["5.2.5", "5.2.6", "5.2.10.dev1"])
def test_supported_versions_pass(version: str) -> None:
    patches.check_moto_version(version)


def test_the_installed_moto_is_supported() -> None:
    patches.check_moto_version()


def test_pyproject_pins_the_supported_range() -> None:
    project = tomllib.loads((r.REPO_ROOT / "pyproject.toml").read_text())
    moto = [d for d in project["project"]["optional-dependencies"]["local"] if d.startswith("moto")]
    assert [re.sub(r"\s", "", d) for d in moto] == [f"moto[server]{patches.supported_range()}"]
