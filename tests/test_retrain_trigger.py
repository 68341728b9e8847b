"""Retrain on a drift alert (issue 17, item 2): Alertmanager posts the firing `ModelFeatureDrift` alert to the Argo
server's event endpoint for the team's namespace, where the WorkflowEventBinding `mlp-retrain-on-drift` submits the
ClusterWorkflowTemplate `mlp-retrain` with the team's retraining arguments.

What each party does with what we render, and how it is tested here:
- Alertmanager: a real Alertmanager (Debian `prometheus-alertmanager` 0.25) runs the dev stack's rendered
  configuration and posts to a local stand-in for the Argo server: the request carries the bearer token read from
  the credentials file, and its JSON has the fields the binding's selector reads. amtool routes the alert.
- The Argo server (v4.1.2 server/event): it lists the namespace's WorkflowEventBindings and, for each whose selector
  matches, gets the ClusterWorkflowTemplate and creates a Workflow, all with the caller's token (`client` auth).
  The RBAC evaluator checks the Alertmanager account may do exactly that, in the team's namespace only. Every
  argument is `valueFrom.event` (operation.go refuses a parameter without it), a JSON string literal.
- The API server: the binding is valid against the upstream WorkflowEventBinding CRD (v4.1.2).
- The network: Alertmanager's pods reach the server's port; nothing else in a team namespace does.
Not run here: Argo's expr-lang evaluation of the selector (Go; no Go toolchain on these machines).
"""

from __future__ import annotations

import copy
import dataclasses
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from mlplatform.infra import specs
from mlplatform.infra.config import ConfigError, validate_config
from mlplatform.infra.drift.alerts import ALERT_NAME
from mlplatform.infra.observability import alerting
from mlplatform.infra.observability.alerting import SERVICE_ACCOUNT_TOKEN, RetrainRoute
from mlplatform.infra.observability.documents import ALERTMANAGER_SERVICE_ACCOUNT
from mlplatform.infra.pipelines import templates
from mlplatform.infra.pipelines.engine.documents import SERVER_PORT, SERVER_SELECTOR, argo_event_url
from mlplatform.infra.platform_policies import ALERTMANAGER
from mlplatform.mlp import rbac
from mlplatform.mlp.k8s_schema import object_of
from mlplatform.mlp.planner import Plan, plan_stack
from mlplatform.mlp.stackfile import Project, load_stack
from tests.aws_server import free_port
from tests.k8s_schema import validate_custom_resource
from tests.network_policy import Destination, Pod, connection_allowed, plan_namespace_labels, plan_policies
from tests.servers import stop, wait_for_http
from tests.test_alerting import for_amtool_025

BINDING = "kubernetes:argoproj.io/v1alpha1:WorkflowEventBinding"
ALERTMANAGER_BIN = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
AMTOOL = shutil.which("amtool")
needs_alertmanager = pytest.mark.skipif(
    (ALERTMANAGER_BIN is None or AMTOOL is None) and not os.environ.get("MLP_REQUIRE_PROMTOOL"),
    reason="Alertmanager is not installed (apt-get install prometheus-alertmanager)",
)


def _binding(plan: Plan) -> dict[str, Any]:
    (binding,) = plan.of_type(BINDING)
    return object_of(binding)


def _alertmanager_config(plan: Plan) -> dict[str, Any]:
    config: dict[str, Any] = plan.get("monitoring-kube-prometheus-stack").inputs["values"]["alertmanager"]["config"]
    return config


# --- the binding and the template it submits ----------------------------------------------------------------------


def test_dev_binds_research_drift_alerts_to_its_retraining(plans: dict[str, Plan]) -> None:
    binding = _binding(plans["dev"])
    assert validate_custom_resource(binding) == []
    assert binding["metadata"] == {**binding["metadata"], "name": "mlp-retrain-on-drift", "namespace": "team-research"}
    spec = binding["spec"]
    assert spec["event"]["selector"] == (
        'discriminator == "drift" && payload?.status == "firing" && payload?.commonLabels?.model == "churn"'
    )
    assert spec["submit"]["workflowTemplateRef"] == {"name": "mlp-retrain", "clusterScope": True}
    # every argument an expression over the event (Argo refuses a plain value), here a string literal
    arguments = {p["name"]: json.loads(p["valueFrom"]["event"]) for p in spec["submit"]["arguments"]["parameters"]}
    assert set(spec["submit"]["arguments"]["parameters"][0]) == {"name", "valueFrom"}
    (cron,) = [
        object_of(r)
        for r in plans["dev"].of_type("kubernetes:argoproj.io/v1alpha1:CronWorkflow")
        if r.inputs["metadata"]["name"] == templates.RETRAIN_CRON
    ]
    (train_step,), (evaluate_step,) = cron["spec"]["workflowSpec"]["templates"][0]["steps"]
    scheduled = {p["name"]: p["value"] for step in (train_step, evaluate_step) for p in step["arguments"]["parameters"]}
    # the alert retrains exactly as the schedule does
    assert arguments == scheduled
    assert arguments["inference-service"] == "churn-champion"
    # and the submitted template declares each of them, and needs no other
    template = templates.retrain_template({})
    assert validate_custom_resource(template) == []
    declared = {p["name"]: p.get("value") for p in template["spec"]["arguments"]["parameters"]}
    assert set(arguments) == set(declared)


def test_the_retrain_template_runs_train_then_evaluate_with_its_own_inputs() -> None:
    image = "111122223333.dkr.ecr.us-east-1.amazonaws.com/mlplatform-steps:0.1.0"
    template = templates.retrain_template({})
    (entry,) = template["spec"]["templates"]
    declared = {p["name"] for p in entry["inputs"]["parameters"]}
    (train_step,), (evaluate_step,) = entry["steps"]
    for step, manifest in (
        (train_step, templates.train_template(image, {})),
        (evaluate_step, templates.evaluate_promote_template(image, {})),
    ):
        ref = step["templateRef"]
        assert (ref["name"], ref["clusterScope"]) == (manifest["metadata"]["name"], True)
        target = {t["name"]: t for t in manifest["spec"]["templates"]}[ref["template"]]
        inputs = {p["name"]: p.get("value") for p in target["inputs"]["parameters"]}
        given = {p["name"]: p["value"] for p in step["arguments"]["parameters"]}
        assert set(given) <= set(inputs)
        assert {n for n, v in inputs.items() if v is None} <= set(given)
        for name, value in given.items():
            assert value == f"{{{{inputs.parameters.{name}}}}}" and name in declared


def test_the_selector_reads_fields_alertmanager_sends(plans: dict[str, Plan]) -> None:
    """The selector's paths exist in Alertmanager's webhook payload (the documented v4 payload: version, groupKey,
    status, receiver, groupLabels, commonLabels, commonAnnotations, externalURL, alerts)."""
    selector = _binding(plans["dev"])["spec"]["event"]["selector"]
    assert "payload?.status" in selector and "payload?.commonLabels?.model" in selector


# --- who may trigger it ------------------------------------------------------------------------------------------


def test_only_alertmanager_may_trigger_and_only_in_the_teams_namespace(plans: dict[str, Plan]) -> None:
    model = rbac.rbac_model(plans["dev"])
    alertmanager = rbac.service_account("monitoring", ALERTMANAGER_SERVICE_ACCOUNT)
    argo = "argoproj.io"
    assert model.allowed(alertmanager, "list", argo, "workfloweventbindings", "team-research")
    assert model.allowed(alertmanager, "create", argo, "workflows", "team-research")
    assert model.allowed(alertmanager, "get", argo, "clusterworkflowtemplates", None, "mlp-retrain")
    denied = [
        ("create", argo, "workflows", "team-other"),
        ("delete", argo, "workflows", "team-research"),
        ("create", argo, "workfloweventbindings", "team-research"),
        ("create", argo, "workflowtemplates", "team-research"),
        ("create", "", "pods", "team-research"),
        ("get", "", "secrets", "team-research"),
        ("create", argo, "workflows", "argo"),
    ]
    assert [d for d in denied if model.allowed(alertmanager, d[0], d[1], d[2], d[3])] == []
    # A team member cannot post the event as Alertmanager: no one but Alertmanager's account is bound.
    bindings = [
        object_of(r)
        for r in plans["dev"].of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
        if object_of(r)["roleRef"]["name"] == "mlp-retrain-trigger"
    ]
    assert [b["subjects"] for b in bindings] == [
        [{"kind": "ServiceAccount", "name": ALERTMANAGER_SERVICE_ACCOUNT, "namespace": "monitoring"}]
    ]


def test_alertmanager_reaches_the_argo_server_and_team_pods_do_not(plans: dict[str, Plan]) -> None:
    plan = plans["dev"]
    network, cluster = plan_policies(plan)

    def pod(namespace: str, labels: dict[str, str]) -> Pod:
        return Pod(namespace, labels, plan_namespace_labels(plan, namespace))

    server = Destination(SERVER_PORT, pod=pod("argo", dict(SERVER_SELECTOR)))
    got = {
        "alertmanager": connection_allowed(network, cluster, pod("monitoring", dict(ALERTMANAGER)), server),
        "prometheus": connection_allowed(
            network, cluster, pod("monitoring", {"app.kubernetes.io/name": "prometheus"}), server
        ),
        "team workflow pod": connection_allowed(
            network, cluster, pod("team-research", {"workflows.argoproj.io/workflow": "w"}), server
        ),
    }
    assert got == {"alertmanager": True, "prometheus": False, "team workflow pod": False}


def test_staging_and_prod_have_no_trigger(plans: dict[str, Plan]) -> None:
    for stack in ("staging", "prod"):
        assert not plans[stack].of_type(BINDING), stack
        receivers = [r["name"] for r in _alertmanager_config(plans[stack])["receivers"]]
        assert not [r for r in receivers if r.startswith("retrain-")], stack


@pytest.fixture
def dev_config(stack_config: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    return stack_config("dev")


def test_on_drift_needs_the_monitoring_stack(dev_config: dict[str, Any]) -> None:
    """The drift gauges and the alert that triggers retraining live in Prometheus and Alertmanager: without the
    monitoring stack, the drift source (which on_drift needs) is refused with the reason."""
    config = copy.deepcopy(dev_config)
    config["ml-platform:observability"]["enabled"] = False
    with pytest.raises(ConfigError) as info:
        validate_config(config, "stacks/Pulumi.dev.yaml")
    messages = {i.key_path(): i.message for i in info.value.issues}
    assert "enable observability" in messages["pipelines.templates.retrain.research.drift_from"]
    retrain = config["ml-platform:pipelines"]["templates"]["retrain"]["research"]
    retrain["on_drift"] = False
    del retrain["drift_from"]
    with pytest.raises(ConfigError) as info:
        validate_config(config, "stacks/Pulumi.dev.yaml")
    assert not {i.key_path() for i in info.value.issues} & {
        "pipelines.templates.retrain.research.on_drift",
        "pipelines.templates.retrain.research.drift_from",
    }


def test_without_on_drift_there_is_no_binding_route_or_grant(project: Project) -> None:
    stack = load_stack(project, "dev")
    config = copy.deepcopy(stack.config)
    config["ml-platform:pipelines"]["templates"]["retrain"]["research"]["on_drift"] = False
    plan = plan_stack(dataclasses.replace(stack, config=config))
    assert not plan.of_type(BINDING)
    assert not [r for r in _alertmanager_config(plan)["receivers"] if r["name"].startswith("retrain-")]
    model = rbac.rbac_model(plan)
    alertmanager = rbac.service_account("monitoring", ALERTMANAGER_SERVICE_ACCOUNT)
    assert not model.allowed(alertmanager, "create", "argoproj.io", "workflows", "team-research")


# --- Alertmanager, for real -------------------------------------------------------------------------------------


def _amtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert AMTOOL is not None, "amtool is required here (MLP_REQUIRE_PROMTOOL): apt-get install prometheus-alertmanager"
    return subprocess.run([AMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@needs_alertmanager
def test_amtool_routes_the_drift_alert_to_the_retrain_and_still_to_the_warning_receivers(
    plans: dict[str, Plan], stack_config: Callable[[str], dict[str, Any]], tmp_path: Path
) -> None:
    def routes(config: dict[str, Any], cases: dict[str, str]) -> None:
        (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(for_amtool_025(config)))
        assert _amtool("check-config", "alertmanager.yml", cwd=tmp_path).returncode == 0
        for labels, receivers in cases.items():
            result = _amtool(
                "config", "routes", "test", "--config.file=alertmanager.yml", *labels.split(), cwd=tmp_path
            )
            assert (result.returncode, result.stdout.strip()) == (0, receivers), labels

    drift = f"alertname={ALERT_NAME} action=retrain severity=warning"
    # dev sends warnings nowhere: the drift alert of churn goes to the retrain only
    routes(
        _alertmanager_config(plans["dev"]),
        {
            f"{drift} model=churn": "retrain-research-churn",
            f"{drift} model=other": "null",
            "alertname=GpuXidError severity=warning model=churn": "null",
        },
    )
    # with warning receivers (prod's), `continue` lets it reach them too
    cfg = validate_config(stack_config("prod"), "stacks/Pulumi.prod.yaml")
    spec = dataclasses.replace(
        specs.alerting_spec(cfg),
        retrain_routes=(RetrainRoute(model="churn", team="research", url=argo_event_url("team-research", "drift")),),
    )
    topic = "arn:aws:sns:us-east-1:444455556666:mlp-prod-alerts"
    routes(
        alerting.alertmanager_config(spec, topic_arn=topic),
        {
            f"{drift} model=churn": "retrain-research-churn,warning",
            f"{drift} model=other": "warning",
        },
    )


class _Capture(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict[str, str], Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def event_endpoint() -> Iterator[tuple[str, type[_Capture]]]:
    handler = type("Capture", (_Capture,), {"received": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


@needs_alertmanager
def test_a_real_alertmanager_posts_the_firing_drift_alert_with_its_token(
    plans: dict[str, Plan], tmp_path: Path, event_endpoint: tuple[str, type[_Capture]]
) -> None:
    assert ALERTMANAGER_BIN is not None
    base, capture = event_endpoint
    config = copy.deepcopy(_alertmanager_config(plans["dev"]))
    # Two stand-ins, nothing else changed but the wait before the first notification: the Argo server's URL (same
    # path) and the token file's location.
    token = tmp_path / "token"
    token.write_text("projected-service-account-token\n")
    (receiver,) = [r for r in config["receivers"] if r["name"] == "retrain-research-churn"]
    (webhook,) = receiver["webhook_configs"]
    url = argo_event_url("team-research", "drift")
    assert webhook["url"] == url
    assert webhook["http_config"]["authorization"] == {"type": "Bearer", "credentials_file": SERVICE_ACCOUNT_TOKEN}
    path = url.split(":2746", 1)[1]
    webhook["url"] = base + path
    webhook["http_config"]["authorization"]["credentials_file"] = str(token)
    config["route"]["group_wait"] = "1s"
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp_path / "alertmanager.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                ALERTMANAGER_BIN,
                f"--config.file={tmp_path / 'alertmanager.yml'}",
                f"--storage.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        api = f"http://127.0.0.1:{port}/api/v2"
        wait_for_http(f"{api}/status", process, timeout=30, log=log)
        alerts = [
            {"labels": {"alertname": ALERT_NAME, "action": "retrain", "model": m, "severity": "warning"}}
            for m in ("churn", "fraud")
        ]
        request = urllib.request.Request(
            f"{api}/alerts", data=json.dumps(alerts).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        deadline = time.monotonic() + 30
        while not capture.received and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # anything else it would send in the same interval
    finally:
        stop(process)
    assert len(capture.received) == 1, log.read_text()[-2000:]
    (got_path, headers, payload) = capture.received[0]
    assert got_path == "/api/v1/events/team-research/drift"
    assert headers["Authorization"] == "Bearer projected-service-account-token"
    # what the binding's selector reads, as Alertmanager sent it: only churn's alert, firing
    assert payload["status"] == "firing"
    assert payload["commonLabels"]["model"] == "churn"
    assert [a["labels"]["model"] for a in payload["alerts"]] == ["churn"]
