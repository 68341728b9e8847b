"""Where alerts go: the stack config's receivers, Alertmanager's configuration as rendered into the plans, the alert
topic and Alertmanager's role in the cloud layer, and the configuration checked by the parsers that will read it.

How each part of the rendered configuration is checked:
- amtool 0.25.0 (Debian `prometheus-alertmanager`, the newest amtool any reachable registry ships; the chart runs
  Alertmanager v0.34.0): `amtool check-config` on the configuration with the one field 0.25 does not know
  (`webhook_configs[].url_file`, since 0.26) swapped for `url`, `amtool config routes test` for the routing, and
  `amtool template render` for the SNS subject template. That the swap is the only one needed is asserted.
- every key of every block, `url_file` included, against the field lists of Alertmanager v0.34.0's configuration
  reference and of Prometheus Operator v0.93.0's own types (the operator parses the chart's configuration strictly
  into them before Alertmanager sees it): tests/data/alertmanager/config-fields.json, with sources and dates.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplatform.infra import specs
from mlplatform.infra.catalog import versions
from mlplatform.infra.config import ConfigError, validate_config
from mlplatform.infra.observability import alerting
from mlplatform.infra.observability.alerting import AlertingSpec
from mlplatform.infra.observability.documents import ALERTMANAGER_SERVICE_ACCOUNT
from mlplatform.mlp.chart_values import coalesce
from mlplatform.mlp.planner import Plan

DATA = Path(__file__).parent / "data" / "alertmanager"
AMTOOL = shutil.which("amtool")
# Like promtool (tests/test_alert_rules.py): skipped where amtool is not installed, failed instead in CI, which
# installs it (`.ci/run`: apt-get install prometheus-alertmanager) and sets MLP_REQUIRE_PROMTOOL.
needs_amtool = pytest.mark.skipif(
    AMTOOL is None and not os.environ.get("MLP_REQUIRE_PROMTOOL"),
    reason="amtool is not installed (apt-get install prometheus-alertmanager)",
)
STACKS = ("dev", "staging", "prod")
ACCOUNT = "444455556666"  # prod's aws_account_id
TOPIC = {
    "staging": "arn:aws:sns:us-east-1:222233334444:mlp-staging-alerts",
    "prod": f"arn:aws:sns:us-east-1:{ACCOUNT}:mlp-prod-alerts",
}


CLI_IMAGE = versions.image("aws-cli")


def _release_values(plan: Plan) -> dict[str, Any]:
    values: dict[str, Any] = plan.get("monitoring-kube-prometheus-stack").inputs["values"]
    return values


def _rendered(plan: Plan) -> dict[str, Any]:
    config: dict[str, Any] = _release_values(plan)["alertmanager"]["config"]
    return config


def _receivers(config: dict[str, Any]) -> dict[str, list[str]]:
    """Receiver name -> the integrations it notifies."""
    return {r["name"]: sorted(k for k in r if k != "name") for r in config["receivers"]}


# --- config ---------------------------------------------------------------------------------------------------


def _errors(config: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        validate_config(config, "stacks/Pulumi.test.yaml")
    return [(i.key_path(), i.message) for i in info.value.issues]


def test_staging_and_prod_refuse_to_alert_nobody(stack_config: Callable[[str], dict[str, Any]]) -> None:
    for stack in ("staging", "prod"):
        config = stack_config(stack)
        del config["ml-platform:observability"]["alerting"]
        assert _errors(config) == [
            (
                "observability.alerting",
                f"{stack} needs at least one alert receiver, or its alerts reach nobody: set sns.enabled: true (an "
                "SNS topic the platform creates; subscribe to it) and/or webhook.secret (a Secrets Manager secret "
                "holding a webhook URL)",
            )
        ]
    dev = validate_config(stack_config("dev"), "dev")  # dev may keep its alerts to itself
    assert not specs.alerting_spec(dev).has_receivers


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"webhook": {"secret": "https://hooks.example.com/T0/B0/s3cr3t"}},
            (
                "observability.alerting.webhook.secret",
                "looks like the webhook URL itself; store it in AWS Secrets Manager and give the secret's name",
            ),
        ),
        (
            {"sns": {"enabled": True, "severities": ["critical", "critical"]}},
            ("observability.alerting.sns.severities", "lists critical more than once"),
        ),
        (
            {"sns": {"enabled": True, "severities": []}},
            (
                "observability.alerting.sns.severities",
                "needs at least one severity (critical, warning, info); to send nothing, turn it off",
            ),
        ),
        (
            {"sns": {"enabled": True, "severities": ["page"]}},
            (
                "observability.alerting.sns.severities[0]",
                "Input should be 'critical', 'warning' or 'info' (got \"page\")",
            ),
        ),
        (
            {"sns": {"enabled": True}, "group_interval": "1h", "repeat_interval": "30m"},
            ("observability.alerting.repeat_interval", "must be at least group_interval (30m < 1h)"),
        ),
        (
            {"sns": {"enabled": True}, "repeat_interval": "4 hours"},
            (
                "observability.alerting.repeat_interval",
                '"4 hours" is not valid: has characters or a format that is not allowed here',
            ),
        ),
    ],
)
def test_bad_alerting_config_is_rejected_with_its_key_path(
    stack_config: Callable[[str], dict[str, Any]], change: dict[str, Any], expected: tuple[str, str]
) -> None:
    config = stack_config("staging")
    config["ml-platform:observability"]["alerting"] = change
    errors = _errors(config)
    assert errors == [expected]
    assert "s3cr3t" not in str(errors)  # a URL given by mistake is not echoed into logs


def test_receivers_need_the_monitoring_stack(stack_config: Callable[[str], dict[str, Any]]) -> None:
    config = stack_config("staging")
    config["ml-platform:observability"]["enabled"] = False
    config["ml-platform:vllm"] = {}  # vLLM's autoscaling would also need Prometheus
    assert _errors(config) == [
        (
            "observability.alerting.sns",
            "needs observability.enabled (Alertmanager, in the monitoring stack, sends the alerts)",
        )
    ]


# --- the builder ----------------------------------------------------------------------------------------------


def _spec(**changes: Any) -> AlertingSpec:
    base: dict[str, Any] = {
        "label": "mlp-test",
        "region": "eu-west-1",
        "sns_severities": ("critical", "warning"),
        "sns_send_resolved": True,
        "webhook_secret": "team/alert-webhook",
        "webhook_severities": ("critical", "info"),
        "webhook_send_resolved": False,
        "group_by": ("alertname", "namespace"),
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
    }
    return AlertingSpec(**{**base, **changes})


def test_each_severity_routes_to_the_receivers_configured_for_it() -> None:
    topic = "arn:aws:sns:eu-west-1:111122223333:mlp-test-alerts"
    config = alerting.alertmanager_config(_spec(), topic_arn=topic)
    assert config["route"] == {
        "receiver": "null",
        "group_by": ["alertname", "namespace"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
        "routes": [
            {"receiver": "null", "matchers": ['alertname = "Watchdog"']},
            {"receiver": "critical", "matchers": ['severity = "critical"']},
            {"receiver": "warning", "matchers": ['severity = "warning"']},
            {"receiver": "info", "matchers": ['severity = "info"']},
        ],
    }
    assert _receivers(config) == {
        "null": [],
        "critical": ["sns_configs", "webhook_configs"],
        "warning": ["sns_configs"],
        "info": ["webhook_configs"],
    }
    critical = config["receivers"][1]
    assert critical["sns_configs"] == [
        {
            "topic_arn": topic,
            "sigv4": {"region": "eu-west-1"},
            "subject": alerting.sns_subject("mlp-test", "critical"),
            "attributes": {"severity": "critical", "cluster": "mlp-test"},
            "send_resolved": True,
        }
    ]
    assert critical["webhook_configs"] == [{"url_file": "/etc/alertmanager/webhook/url", "send_resolved": False}]
    with pytest.raises(ValueError, match="SNS severities need the topic's ARN"):
        alerting.alertmanager_config(_spec(), topic_arn=None)


def test_shipped_stacks_route_as_configured(plans: dict[str, Plan]) -> None:
    expected = {
        "dev": ({"null": [], "retrain-research-churn": ["webhook_configs"]}, ["null", "retrain-research-churn"]),
        "staging": (
            {"null": [], "critical": ["sns_configs"], "warning": ["sns_configs"]},
            ["null", "critical", "warning"],
        ),
        "prod": (
            {"null": [], "critical": ["sns_configs", "webhook_configs"], "warning": ["sns_configs"]},
            ["null", "critical", "warning"],
        ),
    }
    for stack, (receivers, routes) in expected.items():
        config = _rendered(plans[stack])
        assert _receivers(config) == receivers, stack
        assert [r["receiver"] for r in config["route"]["routes"]] == routes, stack
        assert config["route"]["repeat_interval"] == {"dev": "4h", "staging": "12h", "prod": "4h"}[stack]
        for receiver in config["receivers"]:
            for sns in receiver.get("sns_configs", []):
                # The topic the cloud layer made, read back through the StackReference.
                assert sns["topic_arn"] == TOPIC[stack] == plans[stack].get("alerting-topic").outputs["arn"]
                assert sns["sigv4"] == {"region": "us-east-1"}
        # Helm merges these values over the chart's default configuration: nothing of the default survives.
        default = yaml.safe_load((DATA / "kube-prometheus-stack-88.5.3-alertmanager-config.yaml").read_text())
        assert coalesce(config, default) == config
        assert set(default) <= set(config)


def test_the_webhook_url_reaches_alertmanager_as_a_file_only(plans: dict[str, Plan]) -> None:
    am = _release_values(plans["prod"])["alertmanager"]
    assert am["serviceAccount"] == {"create": True, "name": ALERTMANAGER_SERVICE_ACCOUNT}
    pod = am["alertmanagerSpec"]
    (init,) = pod["initContainers"]
    # the pinned AWS CLI, through prod's image cache
    assert init["name"] == "fetch-webhook-url"
    assert (
        init["image"]
        == f"444455556666.dkr.ecr.us-east-1.amazonaws.com/mlp-prod/ecr-public/{CLI_IMAGE.split('/', 1)[1]}"
    )
    assert {e["name"]: e["value"] for e in init["env"]} == {
        "AWS_REGION": "us-east-1",
        "HOME": "/tmp",
        "WEBHOOK_SECRET_ID": "ml-platform/prod/alert-webhook",
        "WEBHOOK_URL_FILE": "/etc/alertmanager/webhook/url",
    }
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "alert-webhook-url", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}} in pod["volumes"]
    assert pod["volumeMounts"] == [
        {"name": "alert-webhook-url", "mountPath": "/etc/alertmanager/webhook", "readOnly": True}
    ]
    # No webhook, no init container; the staging pod is untouched.
    staging = _release_values(plans["staging"])["alertmanager"]["alertmanagerSpec"]
    assert set(staging) == {"nodeSelector", "resources"}


def _run_fetch_script(tmp_path: Path, secret_value: str | None) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The init container's script with a stand-in `aws` that prints `secret_value` (None: fails as without
    permission)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    aws = bin_dir / "aws"
    if secret_value is None:
        aws.write_text("#!/bin/sh\necho 'AccessDeniedException' >&2\nexit 254\n")
    else:
        aws.write_text(f"#!/bin/sh\nprintf '%s\\n' '{secret_value}'\n")
    aws.chmod(0o755)
    url_file = tmp_path / "url"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "WEBHOOK_SECRET_ID": "ml-platform/prod/alert-webhook",
        "WEBHOOK_URL_FILE": str(url_file),
    }
    result = subprocess.run(
        ["/bin/sh", "-c", alerting.webhook_url_script()], env=env, capture_output=True, text=True, timeout=30
    )
    return result, url_file


def test_the_fetch_script_writes_an_https_url_for_alertmanager_only(tmp_path: Path) -> None:
    url = "https://hooks.example.com/services/T0/B0/s3cr3t"
    result, url_file = _run_fetch_script(tmp_path, url)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
    assert url_file.read_text().strip() == url
    assert stat.S_IMODE(url_file.stat().st_mode) == 0o600
    assert list(tmp_path.glob("url.part")) == []


@pytest.mark.parametrize(
    ("secret_value", "message"),
    [
        (None, "cannot read secret ml-platform/prod/alert-webhook: the webhook receiver stays off"),
        (
            "http://hooks.example.com/s3cr3t",
            "secret ml-platform/prod/alert-webhook does not hold an https:// URL: the webhook receiver stays off",
        ),
    ],
)
def test_without_a_usable_url_alertmanager_still_starts_and_the_url_is_never_logged(
    tmp_path: Path, secret_value: str | None, message: str
) -> None:
    result, url_file = _run_fetch_script(tmp_path, secret_value)
    # Exit 0: Alertmanager starts and its other receivers work; only the webhook fails (and is alerted on).
    assert result.returncode == 0
    assert not url_file.exists() and list(tmp_path.glob("url.part")) == []
    assert message in result.stderr and "s3cr3t" not in result.stdout + result.stderr


# --- fields: v0.34.0 reference and the operator's types ---------------------------------------------------------


def _blocks(config: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(block kind, path, mapping) for every mapping of the configuration whose keys are fields."""
    yield "config", "", config
    yield "global", "global", config["global"]

    def routes(route: dict[str, Any], path: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        yield "route", path, route
        for i, child in enumerate(route.get("routes", [])):
            yield from routes(child, f"{path}.routes[{i}]")

    yield from routes(config["route"], "route")
    for i, rule in enumerate(config.get("inhibit_rules", [])):
        yield "inhibit_rule", f"inhibit_rules[{i}]", rule
    for i, receiver in enumerate(config["receivers"]):
        yield "receiver", f"receivers[{i}]", receiver
        for j, sns in enumerate(receiver.get("sns_configs", [])):
            yield "sns_config", f"receivers[{i}].sns_configs[{j}]", sns
            yield "sigv4_config", f"receivers[{i}].sns_configs[{j}].sigv4", sns["sigv4"]
        for j, hook in enumerate(receiver.get("webhook_configs", [])):
            yield "webhook_config", f"receivers[{i}].webhook_configs[{j}]", hook


def unknown_fields(config: dict[str, Any]) -> list[str]:
    """Every key that Alertmanager v0.34.0's reference or Prometheus Operator v0.93.0's types do not have."""
    fields = json.loads((DATA / "config-fields.json").read_text())
    problems = []
    for kind, path, mapping in _blocks(config):
        for parser in ("alertmanager", "prometheus_operator"):
            known = fields[parser]["blocks"][kind]
            problems += [f"{parser}: {path}.{key}".replace(": .", ": ") for key in mapping if key not in known]
    return problems


@pytest.mark.parametrize("stack", STACKS)
def test_every_field_is_known_to_alertmanager_and_the_operator(plans: dict[str, Plan], stack: str) -> None:
    assert unknown_fields(_rendered(plans[stack])) == []


def test_the_field_check_catches_a_field_the_operator_would_refuse(plans: dict[str, Plan]) -> None:
    config = _rendered(plans["prod"])
    # Route labels are in Alertmanager v0.34.0 but not in the operator's types: its strict parse would refuse them.
    config = {**config, "route": {**config["route"], "labels": {"team": "ml"}}}
    assert unknown_fields(config) == ["prometheus_operator: route.labels"]


# --- amtool 0.25.0 ---------------------------------------------------------------------------------------------

AMTOOL_025_SWAPS = {"url_file": ("url", "https://url-file.invalid/")}
"""Fields amtool 0.25.0 does not know (added later), and what stands in for each in the copy it checks."""


def for_amtool_025(value: Any, swapped: list[str] | None = None) -> Any:
    """The configuration as amtool 0.25.0 can read it; `swapped` collects the keys replaced."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in AMTOOL_025_SWAPS:
                new_key, stand_in = AMTOOL_025_SWAPS[key]
                out[new_key] = stand_in
                if swapped is not None:
                    swapped.append(key)
            else:
                out[key] = for_amtool_025(item, swapped)
        return out
    if isinstance(value, list):
        return [for_amtool_025(item, swapped) for item in value]
    return value


def _amtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert AMTOOL is not None, "amtool is required here (MLP_REQUIRE_PROMTOOL): apt-get install prometheus-alertmanager"
    return subprocess.run([AMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@needs_amtool
@pytest.mark.parametrize("stack", STACKS)
def test_amtool_checks_the_rendered_configuration(plans: dict[str, Plan], tmp_path: Path, stack: str) -> None:
    config = _rendered(plans[stack])
    swapped: list[str] = []
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(for_amtool_025(config, swapped)))
    result = _amtool("check-config", "alertmanager.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    receivers = {"dev": 2, "staging": 3, "prod": 3}[stack]
    assert f" - 4 inhibit rules\n - {receivers} receivers\n" in result.stdout
    # Only the webhook's url_file needed a stand-in; every other field was read by amtool itself.
    assert swapped == (["url_file"] if stack == "prod" else [])
    if swapped:  # and amtool 0.25 refuses the field itself, so the swap is needed (and checked above)
        (tmp_path / "as-rendered.yml").write_text(yaml.safe_dump(config))
        refused = _amtool("check-config", "as-rendered.yml", cwd=tmp_path)
        assert refused.returncode != 0 and "field url_file not found" in refused.stdout + refused.stderr


@needs_amtool
def test_amtool_routes_each_severity_of_prod_to_its_receiver(plans: dict[str, Plan], tmp_path: Path) -> None:
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(for_amtool_025(_rendered(plans["prod"]))))
    cases = {
        "severity=critical": "critical",
        "severity=warning": "warning",
        "severity=info": "null",  # prod sends info nowhere
        "alertname=Watchdog severity=none": "null",
        "alertname=GpuXidError severity=critical namespace=serving": "critical",
    }
    for labels, receiver in cases.items():
        result = _amtool("config", "routes", "test", "--config.file=alertmanager.yml", *labels.split(), cwd=tmp_path)
        assert (result.returncode, result.stdout.strip()) == (0, receiver), labels


@needs_amtool
def test_sns_subjects_stay_under_the_sns_limit(tmp_path: Path) -> None:
    subject = alerting.sns_subject("mlp-prod", "critical")
    long_namespace = "team-" + "x" * 120

    def render(status: str, group_labels: dict[str, str], firing: int) -> str:
        alert = {"status": "firing", "labels": group_labels, "annotations": {}}
        data = {
            "receiver": "critical",
            "status": status,
            "alerts": [alert] * firing + [{**alert, "status": "resolved"}],
            "groupLabels": group_labels,
            "commonLabels": group_labels,
            "commonAnnotations": {},
            "externalURL": "http://alertmanager",
        }
        (tmp_path / "data.json").write_text(json.dumps(data))
        result = _amtool(
            "template",
            "render",
            f"--template.glob={tmp_path}/none-*.tmpl",
            f"--template.text={subject}",
            "--template.data=data.json",
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert render("firing", {"alertname": "GpuXidError", "namespace": "serving"}, 2) == (
        "[mlp-prod critical] FIRING:2 GpuXidError serving"
    )
    assert render("resolved", {"alertname": "GpuXidError"}, 0) == "[mlp-prod critical] RESOLVED GpuXidError"
    cut = render("firing", {"alertname": "GpuPodsPending", "namespace": long_namespace}, 3)
    assert len(cut) == alerting.SNS_SUBJECT_MAX == 99
    assert cut.startswith("[mlp-prod critical] FIRING:3 GpuPodsPending team-xxx")


# --- the cloud layer ---------------------------------------------------------------------------------------------


def _policy(plan: Plan, name: str, key: str = "policy") -> dict[str, Any]:
    document: dict[str, Any] = json.loads(plan.get(name).inputs[key])
    return document


def test_prod_publishes_to_its_own_encrypted_tls_only_topic(plans: dict[str, Plan]) -> None:
    prod = plans["prod"]
    key = prod.get("alerting-topic-key")
    topic = prod.get("alerting-topic")
    assert topic.inputs["name"] == "mlp-prod-alerts"
    assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
    assert key.inputs["enableKeyRotation"] is True
    assert key.options["protect"] is True and key.options["retainOnDelete"] is True
    assert {"cost-center", "team", "environment", "owner"} <= set(topic.inputs["tags"])
    assert _policy(prod, "alerting-topic-policy")["Statement"][0] == {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sns:*",
        "Resource": TOPIC["prod"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    cloudwatch = _policy(prod, "alerting-topic-key")["Statement"][1]
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert cloudwatch["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}


def test_alertmanager_may_publish_to_the_topic_and_read_the_webhook_secret_only(plans: dict[str, Plan]) -> None:
    prod = plans["prod"]
    key_arn = prod.get("alerting-topic-key").outputs["arn"]
    assert _policy(prod, "alerting-alertmanager-policy")["Statement"] == [
        {"Sid": "PublishAlerts", "Effect": "Allow", "Action": "sns:Publish", "Resource": TOPIC["prod"]},
        {
            "Sid": "UseTheTopicKeyThroughSns",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": key_arn,
            "Condition": {"StringEquals": {"kms:ViaService": "sns.us-east-1.amazonaws.com"}},
        },
        {
            "Sid": "ReadTheWebhookUrl",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:ml-platform/prod/alert-webhook-??????",
        },
    ]
    association = prod.get("alerting-alertmanager-pod-identity").inputs
    # The service account the chart values name, in the namespace of the release.
    assert (association["namespace"], association["serviceAccount"]) == ("monitoring", ALERTMANAGER_SERVICE_ACCOUNT)
    assert _release_values(prod)["alertmanager"]["serviceAccount"]["name"] == ALERTMANAGER_SERVICE_ACCOUNT
    trust = _policy(prod, "alerting-alertmanager-role", "assumeRolePolicy")["Statement"][0]["Condition"]
    assert trust["StringEquals"]["aws:RequestTag/kubernetes-service-account"] == ALERTMANAGER_SERVICE_ACCOUNT
    # Staging has no webhook: its role publishes and nothing else; dev makes no topic and no role.
    assert [s["Sid"] for s in _policy(plans["staging"], "alerting-alertmanager-policy")["Statement"]] == [
        "PublishAlerts",
        "UseTheTopicKeyThroughSns",
    ]
    assert [r.name for r in plans["dev"].resources if r.name.startswith("alerting")] == []


def test_alertmanager_policy_refuses_a_topic_without_its_key() -> None:
    with pytest.raises(ValueError, match="needs its key's ARN"):
        alerting.alertmanager_policy(
            partition="aws", region="us-east-1", topic_arn=TOPIC["prod"], key_arn=None, webhook_secret_arn=None
        )
    china = json.loads(
        alerting.alertmanager_policy(
            partition="aws-cn",
            region="cn-north-1",
            topic_arn="arn:aws-cn:sns:cn-north-1:111122223333:t",
            key_arn="arn:aws-cn:kms:cn-north-1:111122223333:key/k",
            webhook_secret_arn=None,
        )
    )
    assert china["Statement"][1]["Condition"] == {"StringEquals": {"kms:ViaService": "sns.cn-north-1.amazonaws.com.cn"}}


def test_a_cloud_layer_without_the_topic_output_is_a_clear_error() -> None:
    from mlplatform.infra.observability.component import MonitoringArgs, _values
    from mlplatform.infra.observability.documents import MonitoringSpec

    args = MonitoringArgs(spec=MonitoringSpec(retention="1d", storage_gib=10, grafana=False), alerting=_spec())
    with pytest.raises(ValueError, match="the cloud layer's stack has no output alerts_topic_arn: run `pulumi up`"):
        _values(args, None, CLI_IMAGE)
    assert _values(args, TOPIC["prod"], CLI_IMAGE)["alertmanager"]["config"]["receivers"][1]["name"] == "critical"
