"""Container logs: the log groups and Fluent Bit's role in the cloud layer, Fluent Bit's release and configuration in
the cluster layer, all read from the plans of the shipped stacks.

The Fluent Bit binary is not run (no registry reachable here ships it, and its chart ships no values schema). What
is checked instead, and how:
- the rendered fluent-bit.yaml parses (PyYAML; values re-read with the BaseLoader, as the raw strings Fluent Bit's
  YAML reader hands to its plugins), and every section, plugin and option name is in the option tables of the
  Fluent Bit 5.1.1 documentation, kept reduced in tests/data/fluent-bit/options.json (with its sources, which agree
  with the plugins' config maps at the v5.1.1 tag);
- the routing, by a small model of the documented semantics this configuration relies on (`tail` tag expansion,
  `match` wildcards, the kubernetes filter's tag regex, `rewrite_tag` rules re-emitting at the start of the
  pipeline, `cloudwatch_logs` stream templates and their fallback), walked for files of platform and team pods;
- the chart values against the chart's own values.yaml (tests/data/fluent-bit/chart-0.58.1-values.yaml), and the
  role's policy with the IAM evaluator (`mlp.iam_eval`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplatform.infra.config import ConfigError, validate_config
from mlplatform.infra.container_logs import documents
from mlplatform.infra.container_logs.component import ContainerLogsArgs
from mlplatform.infra.container_logs.component import _values as component_values
from mlplatform.infra.k8s_documents import GPU_TOLERATION
from mlplatform.mlp.iam_eval import Policy, Request, RolePrincipal, arn_matches, evaluate
from mlplatform.mlp.planner import Plan, PlannedResource, plan_stack
from mlplatform.mlp.stackfile import Project, load_project, load_stack

DATA = Path(__file__).parent / "data" / "fluent-bit"
OPTIONS: dict[str, Any] = json.loads((DATA / "options.json").read_text())
CHART_DEFAULTS: dict[str, Any] = yaml.safe_load((DATA / "chart-0.58.1-values.yaml").read_text())
STACKS = ("dev", "staging", "prod")
RETENTION = {"dev": 7, "staging": 30, "prod": 90}
ROOT = Path(__file__).resolve().parents[1]
# The team namespaces of each shipped stack, in config order (each gets a log group and an output).
TEAMS = {s: [f"team-{t}" for t in load_stack(load_project(ROOT), s).validate().tenants] for s in STACKS}
CONTAINER_ID = "0123456789abcdef" * 4


def _release(plan: Plan) -> PlannedResource:
    return plan.get("container-logs-fluent-bit", layer="cluster")


def _values(plan: Plan) -> dict[str, Any]:
    values: dict[str, Any] = _release(plan).inputs["values"]
    return values


def _config_text(plan: Plan) -> str:
    text: str = _values(plan)["config"]["extraFiles"][documents.CONFIG_FILE]
    return text


def _config(plan: Plan) -> dict[str, Any]:
    """The configuration as Fluent Bit's YAML reader sees it: every scalar a string."""
    config: dict[str, Any] = yaml.load(_config_text(plan), Loader=yaml.BaseLoader)
    return config


def _groups(plan: Plan) -> dict[str, PlannedResource]:
    """The container log groups of the cloud layer by name."""
    return {
        r.inputs["name"]: r
        for r in plan.in_layer("cloud")
        if r.type == "aws:cloudwatch/logGroup:LogGroup" and r.name.startswith("container-logs-")
    }


def _account(plan: Plan) -> str:
    """The account the stack deploys to (its aws_account_id, or the planner's placeholder)."""
    account: str = plan.get("container-logs-fluent-bit-role").outputs["arn"].split(":")[4]
    return account


def _group_name(stack: str, key: str) -> str:
    return f"/mlp-{stack}/containers/{key}"


# --- a model of the Fluent Bit semantics the configuration relies on ------------------------------------------


def _wildcard(pattern: str) -> re.Pattern[str]:
    """`match`: case-sensitive, `*` matches any run of characters (pipeline/router: Routing with wildcards)."""
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in pattern))


def _accessor(expression: str) -> list[str]:
    """`$kubernetes['namespace_name']` -> ["kubernetes", "namespace_name"] (record accessor syntax)."""
    m = re.fullmatch(r"\$([A-Za-z0-9_]+)((?:\['[^']+'\])*)", expression)
    assert m, expression
    return [m.group(1), *re.findall(r"\['([^']+)'\]", m.group(2))]


def _lookup(record: Mapping[str, Any], path: list[str]) -> Any:
    value: Any = record
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _template(template: str, record: Mapping[str, Any]) -> str | None:
    """A stream template: each `$key['sub']` replaced by its value; None when one is missing (the plugin then
    falls back to log_stream_prefix + tag)."""
    failed = False

    def value(m: re.Match[str]) -> str:
        nonlocal failed
        found = _lookup(record, _accessor(m.group(0)))
        failed = failed or not isinstance(found, str)
        return found if isinstance(found, str) else ""

    out = re.sub(r"\$[A-Za-z0-9_]+(?:\['[^']+'\])*", value, template)
    return None if failed else out


def _kubernetes(plugin: Mapping[str, str], tag: str, api_answers: bool) -> dict[str, str] | None:
    """What the kubernetes filter adds: pod, namespace and container read from the tag (after kube_tag_prefix) by
    the documented regex; nothing when the API lookup fails (the filter then leaves the record untouched)."""
    if not api_answers:
        return None
    prefix = plugin.get("kube_tag_prefix", OPTIONS["kubernetes_tag_regex"]["kube_tag_prefix_default"])
    assert tag.startswith(prefix), (tag, prefix)
    regex = OPTIONS["kubernetes_tag_regex"]["regex"].replace("(?<", "(?P<")
    m = re.search(regex, tag[len(prefix) :])
    assert m, tag
    return {k: m.group(k) for k in ("pod_name", "namespace_name", "container_name", "docker_id")}


def _deliveries(config: Mapping[str, Any], file: str, *, api_answers: bool = True) -> list[tuple[str, str, str]]:
    """(output alias, log group, log stream) of every delivery of one line read from `file`."""
    (tail,) = config["pipeline"]["inputs"]
    assert tail["name"] == "tail" and re.fullmatch(tail["path"].replace("*", "[^/]*"), file)
    # Tag expansion: `*` becomes the file's absolute path with slashes replaced by dots.
    tag = tail["tag"].replace("*", file.lstrip("/").replace("/", "."))
    out: list[tuple[str, str, str]] = []

    def run(tag: str, record: dict[str, Any], depth: int = 0) -> None:
        assert depth < 3, "a record re-emitted in a loop"
        for plugin in config["pipeline"].get("filters", []):
            if not _wildcard(plugin["match"]).fullmatch(tag):
                continue
            if plugin["name"] == "kubernetes":
                meta = _kubernetes(plugin, tag, api_answers)
                if meta is not None:
                    record = {**record, "kubernetes": meta}
            elif plugin["name"] == "rewrite_tag":
                key, regex, new_tag, keep = plugin["rule"].split()
                value = _lookup(record, _accessor(key))
                m = re.search(regex, value) if isinstance(value, str) else None
                if m:
                    groups = [m.group(0), *(g or "" for g in m.groups())]
                    rewritten = re.sub(r"\$([0-9])", lambda p, g=groups: g[int(p.group(1))], new_tag)
                    run(rewritten, dict(record), depth + 1)  # enters the pipeline again, from its start
                    if keep == "false":
                        return
            else:
                raise AssertionError(f"the model knows no filter {plugin['name']}")
        for output in config["pipeline"]["outputs"]:
            if _wildcard(output["match"]).fullmatch(tag):
                stream = _template(output["log_stream_template"], record)
                out.append((output["alias"], output["log_group_name"], stream or output["log_stream_prefix"] + tag))

    run(tag, {"log": "hello", "stream": "stdout"})
    return out


def _file(pod: str, namespace: str, container: str) -> str:
    return f"/var/log/containers/{pod}_{namespace}_{container}-{CONTAINER_ID}.log"


# --- the rendered configuration -------------------------------------------------------------------------------


def _names(section: str, plugin: str) -> set[str]:
    return set(OPTIONS["plugins"][section][plugin]["names"])


def _undocumented(config: Mapping[str, Any]) -> list[str]:
    """Every section, plugin and option name of a configuration that the documentation's lists do not have."""
    problems = [f"unknown section {k}" for k in config if k not in OPTIONS["sections"]["names"]]
    problems += [f"service: unknown key {k}" for k in config.get("service", {}) if k not in OPTIONS["service"]["names"]]
    for section, plugins in config.get("pipeline", {}).items():
        if section not in OPTIONS["pipeline"]["names"]:
            problems.append(f"pipeline: unknown section {section}")
            continue
        for plugin in plugins:
            name = plugin["name"]
            if name not in OPTIONS["plugins"][section]:
                problems.append(f"{section}: unknown plugin {name}")
                continue
            problems += [f"{section}.{name}: unknown option {k}" for k in plugin if k not in _names(section, name)]
    return problems


@pytest.mark.parametrize("stack", STACKS)
def test_every_section_plugin_and_option_is_documented_for_fluent_bit_5_1_1(plans: dict[str, Plan], stack: str) -> None:
    config = _config(plans[stack])
    assert _undocumented(config) == []
    used = [(section, p["name"]) for section, plugins in config["pipeline"].items() for p in plugins]
    expected = [("inputs", "tail"), ("filters", "kubernetes"), ("filters", "rewrite_tag")]
    expected += [("outputs", "cloudwatch_logs")] * (1 + len(TEAMS[stack]))
    assert used == expected
    (tail,) = config["pipeline"]["inputs"]
    assert tail["multiline.parser"] == "cri"  # containerd's format, a built-in parser
    assert "cri" in OPTIONS["builtin_multiline_parsers"]["names"]


def test_the_name_check_catches_a_misspelled_option_plugin_or_section(plans: dict[str, Plan]) -> None:
    config = _config(plans["prod"])
    config["pipeline"]["outputs"][0]["log_group"] = config["pipeline"]["outputs"][0].pop("log_group_name")
    config["pipeline"]["outputs"][1]["kms_key_id"] = "alias/x"  # the plugin has no KMS option
    config["pipeline"]["filters"][0]["name"] = "kubernetes_metadata"
    config["service"]["http_server.port"] = "2020"
    config["pipelines"] = {}
    assert _undocumented(config) == [
        "unknown section pipelines",
        "service: unknown key http_server.port",
        "filters: unknown plugin kubernetes_metadata",
        "outputs.cloudwatch_logs: unknown option log_group",
        "outputs.cloudwatch_logs: unknown option kms_key_id",
    ]
    # The lists keep their sources.
    assert OPTIONS["retrieved"] == "2026-12-04" and OPTIONS["fluent_bit_version"] == "5.1.1"
    assert "f92ae08080ee108c2d1a2969f9d7e3d3b4c35950" in OPTIONS["sources"]["docs"]
    assert "6315162a8d4b1ef42b038834e639697f8cb44912" in OPTIONS["sources"]["code"]
    assert OPTIONS["plugins"]["outputs"]["cloudwatch_logs"]["url"] == (
        "https://docs.fluentbit.io/manual/pipeline/outputs/cloudwatch"
    )


@pytest.mark.parametrize("stack", STACKS)
def test_the_config_is_the_file_fluent_bit_reads(plans: dict[str, Plan], stack: str) -> None:
    values = _values(plans[stack])
    text = _config_text(plans[stack])
    # The chart passes extraFiles through Helm's `tpl`: nothing in the file may look like a template.
    assert "{{" not in text
    assert yaml.safe_load(text) == documents.fluent_bit_config(
        region="us-east-1",
        log_groups={key: _group_name(stack, key) for key in (documents.PLATFORM, *TEAMS[stack])},
        team_namespaces=TEAMS[stack],
    )
    # The chart mounts its ConfigMap (extraFiles included) here, and Fluent Bit is started on our file: a
    # `.yaml` file is read with the YAML parser.
    assert CHART_DEFAULTS["volumeMounts"] == [{"name": "config", "mountPath": documents.CONFIG_MOUNT}]
    assert values["args"] == ["--workdir=/fluent-bit/etc", "--config=/fluent-bit/etc/conf/fluent-bit.yaml"]
    assert values["command"] == CHART_DEFAULTS["command"] == ["/fluent-bit/bin/fluent-bit"]
    assert set(values["config"]["extraFiles"]) == {"fluent-bit.yaml"}
    # The chart's classic file is still rendered, with nothing in it.
    assert not [s for s in ("inputs", "filters", "outputs") if values["config"][s].strip()]


def test_a_config_text_that_helm_would_template_is_refused() -> None:
    with pytest.raises(ValueError, match=re.escape("must not contain `{{`")):
        documents.fluent_bit_values(config_text="rule: {{ .Values.x }}\n", labels={})


@pytest.mark.parametrize("stack", STACKS)
def test_each_cloudwatch_output_writes_to_a_group_the_cloud_layer_made(plans: dict[str, Plan], stack: str) -> None:
    config = _config(plans[stack])
    facts = OPTIONS["cloudwatch_logs"]
    groups = _groups(plans[stack])
    targets = []
    for output in config["pipeline"]["outputs"]:
        assert [k for k in facts["required"] if k not in output] == []
        assert [k for k in facts["exactly_one_of"] if k in output] == ["log_stream_prefix"]
        assert output["region"] == "us-east-1"
        assert output["auto_create_group"] == "false"
        # Options that would only apply to groups the plugin creates are not set (they would mislead).
        assert not {"log_retention_days", "log_group_class", "log_group_template"} & set(output)
        targets.append(output["log_group_name"])
    assert targets == [_group_name(stack, key) for key in (documents.PLATFORM, *TEAMS[stack])]
    assert sorted(targets) == sorted(groups)


# --- routing --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pod", "namespace", "container", "destination"),
    [
        ("coredns-6d4b75cb6d-x2x9f", "kube-system", "coredns", documents.PLATFORM),
        ("vllm-assistant-7c9f8d6b5-abcde", "serving", "vllm", documents.PLATFORM),
        ("fluent-bit-7xk2p", "logging", "fluent-bit", documents.PLATFORM),
        ("train-0", "team-research", "main", "team-research"),
        ("notebook-5f6d7c8b9-qwert", "team-applied", "jupyter", "team-applied"),
        # Looks like a team's namespace, but no team of that name is configured: the platform's.
        ("job-1", "team-unknown", "main", documents.PLATFORM),
        ("job-1", "team-research-old", "main", documents.PLATFORM),
    ],
)
def test_each_line_reaches_exactly_its_namespaces_group(
    plans: dict[str, Plan], pod: str, namespace: str, container: str, destination: str
) -> None:
    config = _config(plans["prod"])
    assert _deliveries(config, _file(pod, namespace, container)) == [
        (destination, _group_name("prod", destination), f"{namespace}.{pod}.{container}")
    ]


def test_without_kubernetes_metadata_a_line_still_reaches_the_platform_group(plans: dict[str, Plan]) -> None:
    config = _config(plans["prod"])
    file = _file("train-0", "team-research", "main")
    # The API lookup failed: no namespace to route by, so the line goes to the platform's group (not another
    # team's), in a stream named after its file.
    assert _deliveries(config, file, api_answers=False) == [
        (
            documents.PLATFORM,
            "/mlp-prod/containers/platform",
            f"from-tag.kube.var.log.containers.train-0_team-research_main-{CONTAINER_ID}.log",
        )
    ]


def test_a_cluster_without_teams_sends_everything_to_the_platform_group() -> None:
    config = yaml.load(
        documents.render_config(
            documents.fluent_bit_config(
                region="eu-west-1", log_groups={"platform": "/c/containers/platform"}, team_namespaces=[]
            )
        ),
        Loader=yaml.BaseLoader,
    )
    assert [f["name"] for f in config["pipeline"]["filters"]] == ["kubernetes"]
    assert _deliveries(config, _file("train-0", "team-research", "main")) == [
        ("platform", "/c/containers/platform", "team-research.train-0.main")
    ]


def test_a_team_without_a_log_group_is_a_clear_error() -> None:
    with pytest.raises(
        ValueError, match="no log group for team-applied in the cloud layer's output container_log_groups"
    ):
        documents.fluent_bit_config(
            region="us-east-1",
            log_groups={"platform": "/p", "team-research": "/r"},
            team_namespaces=["team-research", "team-applied"],
        )
    args = ContainerLogsArgs(region="us-east-1", log_groups=None)
    with pytest.raises(ValueError, match="has no output container_log_groups: run `pulumi up` for the cloud layer"):
        component_values(args, None, {})


# --- the cloud layer: groups and the role ---------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_the_log_groups_are_encrypted_with_the_logs_key_kept_per_environment_and_tagged(
    plans: dict[str, Plan], stack: str
) -> None:
    plan = plans[stack]
    key = plan.get("platform-logs-key")
    groups = _groups(plan)
    assert sorted(groups) == sorted(_group_name(stack, k) for k in (documents.PLATFORM, *TEAMS[stack]))
    key_policy = json.loads(key.inputs["policy"])
    (logs_service,) = [
        s for s in key_policy["Statement"] if s.get("Principal") == {"Service": "logs.us-east-1.amazonaws.com"}
    ]
    context = logs_service["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    for name, group in groups.items():
        assert group.inputs["kmsKeyId"] == key.outputs["arn"]
        assert group.inputs["retentionInDays"] == RETENTION[stack]
        assert group.inputs["logGroupClass"] == "STANDARD"
        assert {"cost-center", "team", "environment", "owner", "project"} <= set(group.inputs["tags"])
        # The key lets CloudWatch Logs use it for this group (its ARN is the encryption context).
        assert arn_matches(context, f"arn:aws:logs:us-east-1:{_account(plan)}:log-group:{name}")
        tenant = name.rsplit("/team-", 1)[1] if "/team-" in name else None
        assert group.inputs["tags"].get("mlplatform.io/tenant") == tenant
        # Named from the cluster's Output: created after the cluster, deleted before it.
        assert "cluster-eks" in _ancestors(plan, group)


def _ancestors(plan: Plan, resource: PlannedResource) -> set[str]:
    seen: set[str] = set()
    todo = list(resource.dependencies())
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            with contextlib.suppress(KeyError):
                todo += plan.get(name).dependencies()
    return seen


def _writer(plan: Plan) -> Callable[[str, str], bool]:
    role_arn = plan.get("container-logs-fluent-bit-role").outputs["arn"]
    policy = Policy.parse("fluent-bit", plan.get("container-logs-fluent-bit-policy").inputs["policy"])
    principal = RolePrincipal(role_arn)

    def allowed(action: str, resource: str) -> bool:
        return evaluate(Request(action=action, resource=resource), principal, [policy]).allowed

    return allowed


@pytest.mark.parametrize("stack", STACKS)
def test_fluent_bit_may_only_create_streams_and_put_events_in_its_groups(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    allowed = _writer(plan)
    arn = f"arn:aws:logs:us-east-1:{_account(plan)}:log-group:"
    document = json.loads(plan.get("container-logs-fluent-bit-policy").inputs["policy"])
    (statement,) = document["Statement"]
    # Exactly the calls cloudwatch_logs makes with auto_create_group false (cloudwatch_api.c @ v5.1.1).
    always = [
        f"logs:{call}" for call, when in OPTIONS["cloudwatch_logs"]["api_calls"].items() if when.startswith("always")
    ]
    assert statement["Action"] == always == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Resource"] == [
        r for g in sorted(_groups(plan), key=_order(stack)) for r in (arn + g, f"{arn}{g}:log-stream:*")
    ]
    for group in _groups(plan):
        stream = f"{arn}{group}:log-stream:kube-system.coredns-1.coredns"
        assert allowed("logs:CreateLogStream", stream) and allowed("logs:PutLogEvents", stream)
        assert allowed("logs:CreateLogStream", arn + group)
        for action in (
            "logs:CreateLogGroup",
            "logs:PutRetentionPolicy",
            "logs:DescribeLogStreams",
            "logs:DeleteLogGroup",
            "logs:GetLogEvents",
            "logs:FilterLogEvents",
        ):
            assert not allowed(action, arn + group), action
            assert not allowed(action, stream), action
    # Nothing outside its groups: the control-plane group, another cluster's, a name that only starts like one.
    for other in (
        f"/aws/eks/mlp-{stack}/cluster",
        "/mlp-other/containers/platform",
        f"/mlp-{stack}/containers/platform-x",
    ):
        assert not allowed("logs:PutLogEvents", f"{arn}{other}:log-stream:s")
        assert not allowed("logs:CreateLogStream", f"{arn}{other}:log-stream:s")


def _order(stack: str) -> Callable[[str], int]:
    keys = [_group_name(stack, k) for k in (documents.PLATFORM, *TEAMS[stack])]
    return keys.index


@pytest.mark.parametrize("stack", STACKS)
def test_the_role_belongs_to_the_service_account_of_the_release(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    association = plan.get("container-logs-fluent-bit-pod-identity").inputs
    release = _release(plan)
    values = _values(plan)
    assert (association["namespace"], association["serviceAccount"]) == (release.inputs["namespace"], "fluent-bit")
    assert values["serviceAccount"] == {"create": True, "name": association["serviceAccount"]}
    trust = json.loads(plan.get("container-logs-fluent-bit-role").inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Condition"]["StringEquals"] == {
        "aws:RequestTag/eks-cluster-name": f"mlp-{stack}",
        "aws:RequestTag/kubernetes-namespace": "logging",
        "aws:RequestTag/kubernetes-service-account": "fluent-bit",
    }


# --- the cluster layer: the release ---------------------------------------------------------------------------


def _value_paths(values: Any, prefix: str = "") -> Iterator[str]:
    """Every key path of the values, not descending into free-form maps and lists (their content is the chart's
    to pass through)."""
    free_form = {
        "config.extraFiles",
        "labels",
        "podLabels",
        "nodeSelector",
        "resources",
        "securityContext",
        "podSecurityContext",
    }
    if isinstance(values, Mapping):
        for key, value in values.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            if path not in free_form:
                yield from _value_paths(value, path)


@pytest.mark.parametrize("stack", STACKS)
def test_every_value_set_is_a_key_of_the_charts_values(plans: dict[str, Plan], stack: str) -> None:
    defaults = set(_value_paths(CHART_DEFAULTS))
    assert [p for p in _value_paths(_values(plans[stack])) if p not in defaults] == []
    release = _release(plans[stack])
    assert (release.inputs["chart"], release.inputs["version"]) == (
        "oci://ghcr.io/fluent/helm-charts/fluent-bit",
        "0.58.1",
    )


def _tolerates(tolerations: list[dict[str, str]], taint: Mapping[str, str]) -> bool:
    def one(t: Mapping[str, str]) -> bool:
        if t.get("effect") and t["effect"] != taint["effect"]:
            return False
        if t.get("operator") == "Exists":
            return not t.get("key") or t["key"] == taint["key"]
        return t.get("key") == taint["key"] and t.get("value", "") == taint.get("value", "")

    return any(one(t) for t in tolerations)


@pytest.mark.parametrize("stack", STACKS)
def test_fluent_bit_runs_on_every_node_gpu_nodes_included(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    values = _values(plan)
    assert values["kind"] == "DaemonSet" and values["nodeSelector"] == {}
    taints = [
        t
        for r in plan.resources
        if r.type.endswith(":NodePool") and r.type.startswith("kubernetes:karpenter.sh")
        for t in r.inputs["spec"]["template"]["spec"].get("taints", [])
    ]
    effects = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
    taints += [
        {"key": t["key"], "value": t.get("value", ""), "effect": effects[t["effect"]]}
        for r in plan.resources
        if r.type == "aws:eks/nodeGroup:NodeGroup"
        for t in r.inputs.get("taints", [])
    ]
    assert taints  # every stack has GPU pools
    assert all(_tolerates(values["tolerations"], t) for t in taints)
    assert _tolerates(values["tolerations"], {"key": GPU_TOLERATION["key"], "effect": "NoSchedule"})


@pytest.mark.parametrize("stack", STACKS)
def test_the_pod_reads_host_logs_read_only_and_keeps_offsets_on_the_host(plans: dict[str, Plan], stack: str) -> None:
    values = _values(plans[stack])
    config = _config(plans[stack])
    (tail,) = config["pipeline"]["inputs"]
    mounts = {m["mountPath"]: m for m in values["daemonSetVolumeMounts"]}
    volumes = {v["name"]: v for v in values["daemonSetVolumes"]}
    assert mounts["/var/log"]["readOnly"] is True and volumes["varlog"]["hostPath"]["path"] == "/var/log"
    assert tail["path"].startswith("/var/log/")
    assert tail["db"].startswith(documents.STATE_DIR + "/") and not mounts[documents.STATE_DIR].get("readOnly")
    assert volumes["state"]["hostPath"] == {"path": documents.STATE_DIR, "type": "DirectoryOrCreate"}
    assert values["securityContext"]["readOnlyRootFilesystem"] is True
    assert values["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert values["securityContext"]["allowPrivilegeEscalation"] is False
    namespace = plans[stack].get("container-logs-namespace").inputs["metadata"]
    # hostPath volumes are forbidden by `baseline`: the namespace is privileged, and warns at `restricted`.
    assert namespace["name"] == "logging"
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert namespace["labels"]["pod-security.kubernetes.io/warn"] == "restricted"
    assert "container-logs-namespace" in _release(plans[stack]).options["dependsOn"]
    # The probes the chart sets read the HTTP server's health endpoint.
    assert CHART_DEFAULTS["readinessProbe"]["httpGet"]["path"] == "/api/v2/health"
    assert config["service"]["http_server"] == config["service"]["health_check"] == "true"
    assert int(config["service"]["http_port"]) == values["metricsPort"] == 2020


# --- config ---------------------------------------------------------------------------------------------------


def test_logs_are_on_by_default_and_off_removes_both_layers_parts(
    project: Project, stack_config: Callable[[str], dict[str, Any]]
) -> None:
    config = stack_config("dev")
    config["ml-platform:observability"].pop("logs")
    assert validate_config(config, "stacks/Pulumi.dev.yaml").observability.logs.model_dump() == {
        "enabled": True,
        "retention_days": 30,
    }
    config["ml-platform:observability"]["logs"] = {"enabled": False}
    plan = plan_stack(dataclasses.replace(load_stack(project, "dev"), config=config))
    assert [r.name for r in plan.resources if r.name.startswith("container-logs")] == []
    assert "logging" not in [r.inputs.get("metadata", {}).get("name") for r in plan.resources]


def test_a_retention_cloudwatch_does_not_offer_is_rejected_with_its_key_path(
    stack_config: Callable[[str], dict[str, Any]],
) -> None:
    config = stack_config("prod")
    config["ml-platform:observability"]["logs"] = {"enabled": True, "retention_days": 45}
    with pytest.raises(ConfigError) as info:
        validate_config(config, "stacks/Pulumi.prod.yaml")
    ((path, message),) = [(i.key_path(), i.message) for i in info.value.issues]
    assert path == "observability.logs.retention_days"
    assert message.startswith("must be one of the CloudWatch Logs retention periods [1, 3, 5, 7, 14, 30, 60, 90,")
