"""Tracing, X-Ray permissions, the CloudWatch dashboard's application widgets, and the public
dashboard routes, on the session's synthesized template."""

from __future__ import annotations

import json
import re
from typing import Any

from infra_helpers import Synth
from template_views import actions_of, function_names, ref_target, resources, role_statements

from posterflow import resources as r
from posterflow.observability import SECTION_DIMENSION, SERVICE_DIMENSION, Metric

SPEC = r.stack_spec()
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_every_function_traces_actively(synth: Synth) -> None:
    functions = resources(synth.json, "AWS::Lambda::Function")
    # Every function of the template, not only the spec's: a function added elsewhere counts too.
    assert len(functions) >= len(SPEC.functions)
    untraced = [f["Properties"].get("FunctionName", lid) for lid, f in functions.items()
                if f["Properties"].get("TracingConfig") != {"Mode": "Active"}]
    assert not untraced, untraced


def test_every_function_may_send_traces(synth: Synth) -> None:
    for name in function_names(synth.json).values():
        statements = [s for s in role_statements(synth.json, name) if XRAY_ACTIONS & actions_of([s])]
        assert actions_of(statements) >= XRAY_ACTIONS, name
        # X-Ray has no resource-level permissions: "*" is the only resource (nag acknowledged).
        assert all(s["Resource"] == "*" and s["Effect"] == "Allow" for s in statements), name


def test_state_machines_and_stage_trace(synth: Synth) -> None:
    machines = resources(synth.json, "AWS::StepFunctions::StateMachine")
    assert machines and all(m["Properties"]["TracingConfiguration"] == {"Enabled": True} for m in machines.values())
    stages = resources(synth.json, "AWS::ApiGateway::Stage")
    assert stages and all(s["Properties"]["TracingEnabled"] is True for s in stages.values())


def _dashboard_body(synth: Synth) -> str:
    dashboards = resources(synth.json, "AWS::CloudWatch::Dashboard")
    (dashboard,) = dashboards.values()
    body = dashboard["Properties"]["DashboardBody"]
    # A Fn::Join of literal parts and tokens (alarm ARNs, the region), each token inside a JSON
    # string of the body: the literal parts carry the widgets.
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    return "".join(p if isinstance(p, str) else "TOKEN" for p in parts)


def _metric_rows(body: str) -> list[list[Any]]:
    widgets = json.loads(body)["widgets"]
    return [m for w in widgets for m in w.get("properties", {}).get("metrics", [])]


def test_dashboard_graphs_every_application_metric(synth: Synth) -> None:
    body = _dashboard_body(synth)
    rows = _metric_rows(body)
    graphed = {(row[0], row[1], row[3]) for row in rows
               if len(row) >= 4 and row[0] == SPEC.prefix and row[2] == SERVICE_DIMENSION}
    render, crop = SPEC.function("render").name, SPEC.function("crop").name
    expected = {
        (SPEC.prefix, Metric.POSTERS_RENDERED.value, render), (SPEC.prefix, Metric.POSTERS_FAILED.value, render),
        (SPEC.prefix, Metric.RENDER_MS.value, render), (SPEC.prefix, Metric.QUEUE_TO_DONE_MS.value, render),
        (SPEC.prefix, Metric.QUEUE_TO_DONE_MS.value, crop), (SPEC.prefix, Metric.CROP_MS.value, crop),
        (SPEC.prefix, Metric.FACES_FOUND.value, crop), (SPEC.prefix, Metric.CROPS_SUCCEEDED.value, crop),
        (SPEC.prefix, Metric.CROPS_FAILED.value, crop),
        (SPEC.prefix, Metric.ITEMS_DEAD_LETTERED.value, SPEC.function("dlq").name),
        *((SPEC.prefix, Metric.COLD_STARTS.value, fn.name) for fn in SPEC.functions),
    }
    assert expected <= graphed, expected - graphed
    assert {m.value for m in Metric} == {name for _, name, _ in graphed}
    # The per-section graph searches the bounded section dimension only.
    searches = [row[0]["expression"] for row in rows if row and isinstance(row[0], dict) and "expression" in row[0]]
    assert any(re.search(rf"SEARCH\('\{{{SPEC.prefix},{SERVICE_DIMENSION},{SECTION_DIMENSION}\}}.*"
                         rf"{Metric.RENDER_MS.value}", s) for s in searches), searches


def test_dashboard_keeps_the_platform_widgets(synth: Synth) -> None:
    titles = {w["properties"].get("title") for w in json.loads(_dashboard_body(synth))["widgets"]}
    assert {"Queue depth", "DLQ depth", "Invocations", "Errors", "Alarms", "Posters", "Render time (ms)",
            "Crop time (ms)", "Faces found", "Queue to done (ms)"} <= titles


def _rest_paths(t: dict[str, Any]) -> dict[str, str]:
    res = resources(t, "AWS::ApiGateway::Resource")

    def path(lid: str) -> str:
        props = res[lid]["Properties"]
        parent = props["ParentId"]
        prefix = path(ref_target(parent)) if isinstance(parent, dict) and "Ref" in parent else ""
        return f"{prefix}/{props['PathPart']}"

    return {lid: path(lid) for lid in res}


def test_dashboard_routes_need_no_key_and_reach_the_api(synth: Synth) -> None:
    paths = _rest_paths(synth.json)
    methods = {(m["Properties"]["HttpMethod"], paths.get(ref_target(m["Properties"]["ResourceId"]), "/")):
               m["Properties"] for m in resources(synth.json, "AWS::ApiGateway::Method").values()
               if "ResourceId" in m["Properties"] and isinstance(m["Properties"]["ResourceId"], dict)
               and "Ref" in m["Properties"]["ResourceId"]}
    api_fn = next(lid for lid, name in function_names(synth.json).items() if name == SPEC.function("api").name)
    for path in ("/dashboard", "/static/{name}"):
        method = methods[("GET", path)]
        assert method["ApiKeyRequired"] is False, path
        assert method["AuthorizationType"] == "NONE", path
        assert api_fn in json.dumps(method["Integration"]["Uri"]), path
    # Other methods on them go nowhere without a key.
    assert ("POST", "/dashboard") not in methods
    outputs = synth.json["Outputs"]
    url = next(o for k, o in outputs.items() if k.startswith("JobsDashboardUrl"))
    assert json.dumps(url["Value"]).endswith('dashboard"]]}')


def test_the_core_layer_carries_the_dashboard_page(synth: Synth) -> None:
    """The api function serves the page from the library's package data: the layer asset has it."""
    (layer,) = [res for res in resources(synth.json, "AWS::Lambda::LayerVersion").values()
                if res["Properties"].get("LayerName", "").endswith("-core")]
    asset = str(layer["Properties"]["Content"]["S3Key"]).removesuffix(".zip")
    page_dir = synth.outdir / f"asset.{asset}" / "python" / "posterflow" / "api" / "dashboard"
    assert {"index.html", "app.js", "style.css"} <= {p.name for p in page_dir.iterdir()}
