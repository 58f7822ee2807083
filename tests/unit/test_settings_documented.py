"""Every environment variable is declared once (``posterflow.config``, the local cloud's in
``posterflow_local.settings``), documented in the README's configuration table, and read only
through those modules."""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

import pytest

from posterflow import config
from posterflow import resources as r
from posterflow_local import settings as local_settings

ROOT = r.REPO_ROOT
LIBRARY = ROOT / "layers" / "core" / "python" / "posterflow"
CONFIG_PY = LIBRARY / "config.py"
# Still read os.environ themselves; owned by others, to be moved onto config. Each entry must
# still be needed (see test_pending_exceptions_are_still_needed), so the list only shrinks.
PENDING: dict[Path, str] = {}
_ENV_ATTRS = frozenset({"environ", "environb", "getenv", "putenv", "unsetenv"})
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_NONE = "—"


def all_settings() -> tuple[config.Setting, ...]:
    return config.settings() + local_settings.SETTINGS


def full_environment() -> dict[str, str]:
    """What the stack gives a function when every ref is present: all queues with their DLQs
    (``<key>_dlq``, as infra's Queues.queue_urls and the local cloud's provision name them), all
    state machines and functions."""
    spec = r.stack_spec()
    queue_urls = {k: "u" for q in spec.queues for k in (q.key, f"{q.key}_dlq")}
    refs = r.ResourceRefs(bucket="b", table="t", queue_urls=queue_urls,
                          state_machine_arns={sm.key: "a" for sm in spec.state_machines},
                          function_names={fn.key: fn.name for fn in spec.functions})
    return r.function_environment(spec, spec.function("api"), refs)


def _pattern(setting: config.Setting) -> re.Pattern[str]:
    head, tail = setting.name.split(config.KEY_SLOT)
    return re.compile(f"^{re.escape(head)}[A-Z0-9_]+{re.escape(tail)}$")


def concrete(setting: config.Setting) -> set[str]:
    """The variables a setting stands for: itself, or (a ``{key}`` pattern) each one the stack sets."""
    if not setting.is_pattern:
        return {setting.name}
    return {name for name in full_environment() if _pattern(setting).match(name)}


def registered() -> dict[str, config.Setting]:
    return {name: s for s in all_settings() for name in concrete(s)}


# ---- the README table ---------------------------------------------------------------------------


def expand_braces(token: str) -> list[str]:
    """``A_{X,Y}_B`` → ``A_X_B``, ``A_Y_B`` (several groups multiply)."""
    parts = re.split(r"\{([^{}]*)\}", token)
    literals, groups = parts[0::2], [g.split(",") for g in parts[1::2]]
    return ["".join(itertools.chain.from_iterable(itertools.zip_longest(literals, combo, fillvalue="")))
            for combo in itertools.product(*groups)]


def table_rows(readme: str) -> list[tuple[list[str], str, str]]:
    """(variables, scope, default) of each row of the ``## Configuration`` table."""
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[:3] == ["variable", "scope", "default"], header
    rows = []
    for line in lines[2:]:  # after the header and its --- line
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        names = [n for token in re.findall(r"`([^`]+)`", cells[0]) for n in expand_braces(token)]
        rows.append((names, cells[1], cells[2]))
    return rows


def documented() -> list[tuple[list[str], str, str]]:
    return table_rows((ROOT / "README.md").read_text())


def test_brace_expansion() -> None:
    assert expand_braces("P_{A,B}_Q") == ["P_A_Q", "P_B_Q"]
    assert expand_braces("P_{A,B}_{X,Y}") == ["P_A_X", "P_A_Y", "P_B_X", "P_B_Y"]
    assert expand_braces("PLAIN") == ["PLAIN"]


def test_table_parser_reads_rows() -> None:
    readme = ("x\n## Configuration\n\ntext\n\n| variable | scope | default | meaning |\n| --- | --- | --- | --- |\n"
              "| `A_{X,Y}`, `B` | stack | `3` | m `{id}` |\n\n## Next\n| `C` | stack | — | no |\n")
    assert table_rows(readme) == [(["A_X", "A_Y", "B"], "stack", "`3`")]


def test_every_setting_is_in_the_readme_table() -> None:
    names = {n for row in documented() for n in row[0]}
    missing = sorted(set(registered()) - names)
    assert not missing, f"declared but not in README.md's configuration table: {missing}"


def test_every_variable_in_the_readme_table_is_declared() -> None:
    names = [n for row in documented() for n in row[0]]
    assert all(_NAME.match(n) for n in names), names
    unknown = sorted(set(names) - set(registered()))
    assert not unknown, f"in README.md's configuration table but declared nowhere: {unknown}"
    assert len(names) == len(set(names)), "a variable is documented twice"


def test_the_table_states_each_scope_and_default() -> None:
    known = registered()
    for names, scope, default in documented():
        for name in names:
            setting = known[name]
            assert scope == setting.scope.value, name
            assert default == (f"`{setting.default}`" if setting.default else _NONE), name


# ---- the registry -------------------------------------------------------------------------------


def test_names_are_declared_once() -> None:
    names = [s.name for s in all_settings()]
    assert len(names) == len(set(names))
    with pytest.raises(ValueError, match="twice"):
        config._register(config.BUCKET)


def test_each_setting_is_described() -> None:
    for s in all_settings():
        assert s.description.strip(), s.name
        assert _NAME.match(s.name.replace(config.KEY_SLOT, "KEY")), s.name


def test_patterns_stand_for_what_the_stack_sets() -> None:
    for s in all_settings():
        if s.is_pattern:
            assert concrete(s), f"{s.name}: the stack sets no variable of this pattern"
    assert "POSTERFLOW_SPLIT_DLQ_QUEUE_URL" in concrete(config.QUEUE_URL)


def test_stack_scope_is_what_the_stack_sets() -> None:
    """``stack`` settings are exactly the variables function_environment gives every function,
    plus the signing secret's ARN (given only to functions granted the secret)."""
    env = set(full_environment())
    stack = {name for s in config.settings() if s.scope is config.Scope.STACK for name in concrete(s)}
    assert stack - env == {config.ENV_SIGNING_SECRET_ARN}
    assert env <= stack, sorted(env - stack)


def test_local_cloud_settings_have_local_scope() -> None:
    assert all(s.scope is config.Scope.LOCAL_CLOUD for s in local_settings.SETTINGS)
    assert all(s.scope is not config.Scope.LOCAL_CLOUD for s in config.settings())


# ---- accessors ----------------------------------------------------------------------------------


def test_empty_means_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.ENV_RETENTION_DAYS, "")
    assert config.retention_days() == 30
    monkeypatch.setenv(config.ENV_RETENTION_DAYS, "7")
    assert config.retention_days() == 7
    monkeypatch.setenv(config.WEBHOOK_TIMEOUT_S.name, "")
    assert config.webhook_timeout_s() == 10.0


def test_flags_fail_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, on in (("allow", True), (" Allow ", True), ("yes", False), ("", False)):
        monkeypatch.setenv(config.ENV_TEMPLATE_JAVASCRIPT, value)
        assert config.template_javascript_allowed() is on, value
    for value, on in (("1", True), ("true", False), ("0", False)):
        monkeypatch.setenv(config.WEBHOOK_ALLOW_LOOPBACK.name, value)
        assert config.webhook_allow_loopback() is on, value
    monkeypatch.delenv(config.WEBHOOK_ALLOW_LOOPBACK.name)
    assert config.webhook_allow_loopback() is False


def test_settings_are_read_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTERFLOW_RENDER_QUEUE_URL", "one")
    assert config.queue_url("render") == "one"
    monkeypatch.setenv("POSTERFLOW_RENDER_QUEUE_URL", "two")
    assert config.queue_url("render") == "two"
    monkeypatch.delenv("POSTERFLOW_RENDER_QUEUE_URL")
    with pytest.raises(config.ConfigError, match="POSTERFLOW_RENDER_QUEUE_URL"):
        config.queue_url("render")
    monkeypatch.setenv(config.RENDER_ALLOWLIST.name, " https://a/ ,, https://b ")
    assert config.render_allowlist() == ["https://a/", "https://b"]


def test_region_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    assert config.aws_region() == "us-east-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert config.aws_region() == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    assert config.aws_region() == "ap-south-1"


def test_pattern_names_need_a_key() -> None:
    assert config.QUEUE_URL.env_name("split_dlq") == "POSTERFLOW_SPLIT_DLQ_QUEUE_URL"
    with pytest.raises(ValueError):
        config.QUEUE_URL.env_name()
    with pytest.raises(ValueError):
        config.BUCKET.env_name("x")


# ---- the signing secret has no public fallback --------------------------------------------------


def test_signing_secret_has_no_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.SIGNING_SECRET.default is None
    assert config.SIGNING_SECRET_ARN.default is None
    monkeypatch.delenv(config.ENV_SIGNING_SECRET, raising=False)
    monkeypatch.delenv(config.ENV_SIGNING_SECRET_ARN, raising=False)
    with pytest.raises(config.ConfigError):
        config.signing_secret()


_DIRECT_SECRET = re.compile(r"SIGNING_SECRET\b")  # the direct value; the ARN is SIGNING_SECRET_ARN


def test_no_code_sets_the_direct_signing_secret() -> None:
    """Only tests may set the key itself: if the stack, the local cloud or a function named it,
    it would be a value in their configuration (or source) instead of in Secrets Manager."""
    sources = [p for top in ("layers", "functions", "local", "infra", "bench", "scripts")
               for p in (ROOT / top).rglob("*") if p.suffix in (".py", ".sh", ".json", ".ts")
               and p.is_file() and "node_modules" not in p.parts and "cdk.out" not in p.parts]
    found = [str(p.relative_to(ROOT)) for p in sources if p != CONFIG_PY and _DIRECT_SECRET.search(p.read_text())]
    assert not found


def test_the_direct_secret_pattern_matches() -> None:
    assert _DIRECT_SECRET.search('env["POSTERFLOW_SIGNING_SECRET"] = "x"')
    assert _DIRECT_SECRET.search("os.environ[config.ENV_SIGNING_SECRET] = 'x'")
    assert not _DIRECT_SECRET.search("fn.add_environment(config.ENV_SIGNING_SECRET_ARN, arn)")


# ---- no environment reads outside config --------------------------------------------------------


def environ_uses(source: str) -> list[int]:
    """Lines that touch the process environment: ``os.environ``, ``os.getenv`` (under any alias
    of ``os``) and ``from os import environ``."""
    def touches(node: ast.Attribute | ast.ImportFrom) -> bool:
        if isinstance(node, ast.Attribute):
            return node.attr in _ENV_ATTRS
        return node.module == "os" and any(a.name in _ENV_ATTRS for a in node.names)

    nodes = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Attribute | ast.ImportFrom)]
    return sorted(n.lineno for n in nodes if touches(n))


def test_the_scan_finds_environment_reads() -> None:
    assert environ_uses("import os\nx = os.environ.get('A')\n") == [2]
    assert environ_uses("import os as o\nx = o.getenv('A')\n") == [2]
    assert environ_uses("from os import environ\n") == [1]
    assert environ_uses("'''os.environ in a docstring'''\nimport os\nos.path.join('a')\n") == []


def _scanned() -> list[Path]:
    return sorted([*(ROOT / "layers").rglob("*.py"), *(ROOT / "functions").rglob("*.py")])


def test_only_config_reads_the_environment() -> None:
    offenders = {str(p.relative_to(ROOT)): environ_uses(p.read_text()) for p in _scanned()
                 if p != CONFIG_PY and p not in PENDING}
    offenders = {p: lines for p, lines in offenders.items() if lines}
    assert not offenders, f"read settings through posterflow.config, not os.environ: {offenders}"


def test_pending_exceptions_are_still_needed() -> None:
    for path, why in PENDING.items():
        assert environ_uses(path.read_text()), f"{path.name} no longer reads os.environ: drop it from PENDING ({why})"
