"""Kubernetes objects and Helm releases declared in a Terraform plan, as the normalized resources the rules read.

The Terraform reader (`policies/sources/terraform.py`) hands every resource change of a type in `KUBERNETES_TYPES`
to `kubernetes_resources`, with the change's `after` values (snake_case, unknown values already `UNKNOWN`). Each
becomes one resource shaped like the Pulumi side's: the type token Pulumi gives that apiVersion and kind
(`kubernetes:apps/v1:Deployment`, `kubernetes:core/v1:Namespace`, `kubernetes:karpenter.sh/v1:NodePool`,
`kubernetes:helm.sh/v3:Release`) and inputs as the Pulumi Kubernetes SDK records them: the object's fields at the top
level (`apiVersion`, `kind`, `metadata`, `spec`, or `roleRef` and `subjects` for a binding); for a Helm release
`name`, `chart`, `version`, `repositoryOpts.repo`, `namespace` and `values` as one merged mapping. Kubernetes
objects have no AWS tags and no Pulumi resource options; references between resources are the reader's.

| Terraform type (provider) | becomes |
|---|---|
| `kubernetes_manifest` (hashicorp/kubernetes) | the token of the object's apiVersion/kind; `manifest` is the object |
| `kubectl_manifest` (gavinbunney/kubectl, alekc/kubectl) | the same, from `yaml_body` (one YAML document) |
| `helm_release` (hashicorp/helm) | `kubernetes:helm.sh/v3:Release`, values merged as the provider merges them |
| `kubernetes_deployment(_v1)`, `kubernetes_stateful_set(_v1)` | `kubernetes:apps/v1:Deployment`, `...:StatefulSet` |
| `kubernetes_daemonset`, `kubernetes_daemon_set_v1` | `kubernetes:apps/v1:DaemonSet` |
| `kubernetes_job(_v1)`, `kubernetes_cron_job_v1` | `kubernetes:batch/v1:Job`, `kubernetes:batch/v1:CronJob` |
| `kubernetes_pod(_v1)`, `kubernetes_namespace(_v1)` | `kubernetes:core/v1:Pod`, `kubernetes:core/v1:Namespace` |
| `kubernetes_service(_v1)` | `kubernetes:core/v1:Service` |
| `kubernetes_network_policy(_v1)` | `kubernetes:networking.k8s.io/v1:NetworkPolicy` |
| `kubernetes_ingress_v1` | `kubernetes:networking.k8s.io/v1:Ingress` |
| `kubernetes_role_binding(_v1)` | `kubernetes:rbac.authorization.k8s.io/v1:RoleBinding` |
| `kubernetes_cluster_role_binding(_v1)` | `kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding` |
| `kubernetes_ingress`, `kubernetes_cron_job` | skipped: the provider's deprecated v1beta1 schemas, no rule reads them |

`kubectl_manifest`: `override_namespace` replaces `metadata.namespace`; the paths in `sensitive_fields` (by default
`data` of a Secret) become UNKNOWN.

**Typed resources** (`kubernetes_deployment_v1` and the rest) write every object as a one-element list of snake_case
blocks (`spec[0].template[0].spec[0].container[...]`). They are converted field by field, with the provider's
schema as the guide (blocks of at most one item unwrapped, `container` -> `containers`, `toleration` ->
`tolerations`, `host_pid` -> `hostPID`, label, annotation and resource maps copied untouched, `replicas` and user ids
from the provider's strings to integers). Only the fields listed in `_POD_SPEC`, `_CONTAINER` and the per-type
tables below are carried: everything a rule or the cost estimate reads (metadata, pod security context, tolerations,
host namespaces, containers' image, env, resources and security context, node selector and priority class, network
policy selectors, policy types and rules, role references and subjects, Service type, Ingress class), nothing else,
so that no field is guessed. The SDKv2 provider writes unset nested attributes as zero values (`false`, `""`, `[]`):
a boolean is kept as planned, since the provider sends it to the API as it is (a container `security_context` block
without `run_as_non_root` sends `runAsNonRoot: false`, see `expandContainerSecurityContext`); an empty string or
list is dropped, as the API omits it.

**Helm values** follow the provider's `getValues`: each `values` document deep-merged over the previous ones (maps
merge, anything else is replaced), then each `set`, `set_list` and `set_sensitive` entry applied in that order. Names
use Helm's `strvals` syntax (`a.b`, `a\\.b` for a dot inside a key, `a[0]` for a list index); `type = "auto"` types
`true`, `false`, `null` and integers as Helm does; `type = "literal"` parses the value as YAML under the literal
name. A value Helm would split further (an unescaped `,` or a `{...}` list) is UNKNOWN rather than guessed. A
`set_sensitive` value is never read: its path becomes UNKNOWN, as does anything whose name is unknown.

Unknown values stay UNKNOWN, so a rule reports nothing it cannot know; a manifest or `yaml_body` known only after
apply is skipped with that reason, as is a `yaml_body` that is not one YAML mapping (the reason never quotes it).

Sources read (2026-12): hashicorp/terraform-provider-kubernetes at 3a33fb6 (`docs/resources/manifest.md`:
`manifest`, `object`; `kubernetes/provider.go`: resource names; `schema_pod_spec.go`, `schema_container.go`,
`schema_metadata.go`, `schema_rbac.go`, `schema_job_spec.go`, `schema_cron_job_spec_v1.go`,
`resource_kubernetes_{deployment,stateful_set,daemon_set,pod,job,cron_job,namespace,network_policy,role_binding,
cluster_role_binding,service,ingress}_v1.go`; `structures_container.go`, `structures_pod.go`: how blocks are sent);
hashicorp/terraform-provider-helm at ecffae0 (`docs/resources/release.md`: `chart`, `repository`, `version`,
`namespace`, `values`, `set`, `set_list`, `set_sensitive` with `name`, `value`, `type`; `helm/resource_helm_release.go`
`getValues`, `getValue`, `getListValue`, `mergeMaps`); gavinbunney/terraform-provider-kubectl and
alekc/terraform-provider-kubectl `docs/resources/kubectl_manifest.md` (`yaml_body`, `yaml_body_parsed`,
`sensitive_fields`, `override_namespace`); Terraform `terraform show` docs (`-json` writes sensitive values in plain
text, hence `set_sensitive` is masked here).

**Rules on Terraform plans.** With this module 64 of the 65 rules can fire on a Terraform plan (50 before it; count
with `scripts/terraform_rule_coverage.py`). The one that cannot:

| rule | why not |
|---|---|
| `mlp-prod-data-protected` | reads Pulumi's `protect` and `retainOnDelete`; `prevent_destroy` is not in plan JSON |

and, within rules that fire, what a Terraform plan cannot show:

| rule | limit |
|---|---|
| `kubernetes-workload-*`, `mlp-hub-token-...` | a RayCluster only as a manifest (there is no typed resource) |
| `mlp-budget` | prices what the plan declares; a Helm chart's own workloads are not rendered, as on the Pulumi side |
| all | objects a `helm_release` renders from its chart are not seen (same as Pulumi's `Release`) |

The rules that read chart values and Karpenter objects (hub token, chart pin, load balancer controller, public
endpoints, budget) report nothing for a value unknown until apply, such as a `set_sensitive`; the engine lists the
read as unjudged.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from mlplatform.policies.model import UNKNOWN, Resource, Skipped, is_unknown

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"

# --- type tokens ----------------------------------------------------------------------------------------------


def type_token(api_version: str, kind: str) -> str:
    """The Pulumi token of an apiVersion and kind: `v1`/`Pod` -> `kubernetes:core/v1:Pod`,
    `karpenter.sh/v1`/`NodePool` -> `kubernetes:karpenter.sh/v1:NodePool`."""
    group_version = api_version if "/" in api_version else f"core/{api_version}"
    return f"kubernetes:{group_version}:{kind}"


# --- typed resources: the provider's schema, as far as rules read it ------------------------------------------

Shape = Literal["value", "map", "block", "blocks"]


@dataclass(frozen=True)
class Field:
    """One attribute of a typed Kubernetes resource: its API name and how Terraform writes it."""

    name: str
    shape: Shape = "value"
    """`value` (a scalar or a list of scalars), `map` (keys are data: labels, limits), `block` (a list of at most one
    object, unwrapped), `blocks` (a list of objects)."""
    children: Mapping[str, Field] = field(default_factory=dict)
    convert: Callable[[Any], Any] | None = None


def _int(value: Any) -> Any:
    """The provider keeps some integers as strings (`replicas`, `run_as_user`); the API has integers."""
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    return value


def _int_or_string(value: Any) -> Any:
    """Ports are IntOrString in the API and strings in the provider."""
    return _int(value)


def _v(name: str, convert: Callable[[Any], Any] | None = None) -> Field:
    return Field(name, "value", convert=convert)


def _map(name: str) -> Field:
    return Field(name, "map")


def _block(name: str, children: Mapping[str, Field]) -> Field:
    return Field(name, "block", children)


def _blocks(name: str, children: Mapping[str, Field]) -> Field:
    return Field(name, "blocks", children)


_METADATA: dict[str, Field] = {
    "name": _v("name"),
    "generate_name": _v("generateName"),
    "namespace": _v("namespace"),
    "labels": _map("labels"),
    "annotations": _map("annotations"),
}
_LABEL_SELECTOR: dict[str, Field] = {
    "match_labels": _map("matchLabels"),
    "match_expressions": _blocks(
        "matchExpressions", {"key": _v("key"), "operator": _v("operator"), "values": _v("values")}
    ),
}
_KEY_REF = {"name": _v("name"), "key": _v("key"), "optional": _v("optional")}
_CONTAINER: dict[str, Field] = {
    "name": _v("name"),
    "image": _v("image"),
    "image_pull_policy": _v("imagePullPolicy"),
    "command": _v("command"),
    "args": _v("args"),
    "env": _blocks(
        "env",
        {
            "name": _v("name"),
            "value": _v("value"),
            "value_from": _block(
                "valueFrom",
                {
                    "secret_key_ref": _block("secretKeyRef", _KEY_REF),
                    "config_map_key_ref": _block("configMapKeyRef", _KEY_REF),
                    "field_ref": _block("fieldRef", {"field_path": _v("fieldPath"), "api_version": _v("apiVersion")}),
                    "resource_field_ref": _block(
                        "resourceFieldRef",
                        {"container_name": _v("containerName"), "resource": _v("resource"), "divisor": _v("divisor")},
                    ),
                },
            ),
        },
    ),
    "env_from": _blocks(
        "envFrom",
        {
            "prefix": _v("prefix"),
            "secret_ref": _block("secretRef", {"name": _v("name"), "optional": _v("optional")}),
            "config_map_ref": _block("configMapRef", {"name": _v("name"), "optional": _v("optional")}),
        },
    ),
    "resources": _block("resources", {"limits": _map("limits"), "requests": _map("requests")}),
    "security_context": _block(
        "securityContext",
        {
            "privileged": _v("privileged"),
            "run_as_non_root": _v("runAsNonRoot"),
            "run_as_user": _v("runAsUser", _int),
            "run_as_group": _v("runAsGroup", _int),
            "allow_privilege_escalation": _v("allowPrivilegeEscalation"),
            "read_only_root_filesystem": _v("readOnlyRootFilesystem"),
            "capabilities": _block("capabilities", {"add": _v("add"), "drop": _v("drop")}),
        },
    ),
}
_POD_SPEC: dict[str, Field] = {
    "container": _blocks("containers", _CONTAINER),
    "init_container": _blocks("initContainers", _CONTAINER),
    "toleration": _blocks(
        "tolerations",
        {
            "key": _v("key"),
            "operator": _v("operator"),
            "value": _v("value"),
            "effect": _v("effect"),
            "toleration_seconds": _v("tolerationSeconds", _int),
        },
    ),
    "security_context": _block(
        "securityContext",
        {
            "run_as_non_root": _v("runAsNonRoot"),
            "run_as_user": _v("runAsUser", _int),
            "run_as_group": _v("runAsGroup", _int),
            "fs_group": _v("fsGroup", _int),
        },
    ),
    "host_network": _v("hostNetwork"),
    "host_pid": _v("hostPID"),
    "host_ipc": _v("hostIPC"),
    "node_selector": _map("nodeSelector"),
    "priority_class_name": _v("priorityClassName"),
    "service_account_name": _v("serviceAccountName"),
    "automount_service_account_token": _v("automountServiceAccountToken"),
    "runtime_class_name": _v("runtimeClassName"),
}
_POD_TEMPLATE: dict[str, Field] = {"metadata": _block("metadata", _METADATA), "spec": _block("spec", _POD_SPEC)}
_JOB_SPEC: dict[str, Field] = {
    "parallelism": _v("parallelism"),
    "completions": _v("completions"),
    "backoff_limit": _v("backoffLimit"),
    "template": _block("template", _POD_TEMPLATE),
}
_REPLICATED_SPEC: dict[str, Field] = {
    "replicas": _v("replicas", _int),
    "selector": _block("selector", _LABEL_SELECTOR),
    "template": _block("template", _POD_TEMPLATE),
}
_PEER = {
    "ip_block": _block("ipBlock", {"cidr": _v("cidr"), "except": _v("except")}),
    "namespace_selector": _block("namespaceSelector", _LABEL_SELECTOR),
    "pod_selector": _block("podSelector", _LABEL_SELECTOR),
}
_POLICY_PORTS = _blocks(
    "ports", {"port": _v("port", _int_or_string), "end_port": _v("endPort"), "protocol": _v("protocol")}
)
_ROLE_REF = _block("roleRef", {"api_group": _v("apiGroup"), "kind": _v("kind"), "name": _v("name")})
_SUBJECTS = _blocks(
    "subjects", {"api_group": _v("apiGroup"), "kind": _v("kind"), "name": _v("name"), "namespace": _v("namespace")}
)


@dataclass(frozen=True)
class TypedKind:
    api_version: str
    kind: str
    fields: Mapping[str, Field]


def _workload(api_version: str, kind: str, spec: Mapping[str, Field]) -> TypedKind:
    return TypedKind(api_version, kind, {"metadata": _block("metadata", _METADATA), "spec": _block("spec", spec)})


_DEPLOYMENT = _workload("apps/v1", "Deployment", _REPLICATED_SPEC)
_STATEFUL_SET = _workload("apps/v1", "StatefulSet", {**_REPLICATED_SPEC, "service_name": _v("serviceName")})
_DAEMON_SET = _workload(
    "apps/v1",
    "DaemonSet",
    {"selector": _block("selector", _LABEL_SELECTOR), "template": _block("template", _POD_TEMPLATE)},
)
_JOB = _workload("batch/v1", "Job", _JOB_SPEC)
_CRON_JOB = _workload(
    "batch/v1",
    "CronJob",
    {
        "schedule": _v("schedule"),
        "job_template": _block(
            "jobTemplate", {"metadata": _block("metadata", _METADATA), "spec": _block("spec", _JOB_SPEC)}
        ),
    },
)
_POD = _workload("v1", "Pod", _POD_SPEC)
_NAMESPACE = TypedKind("v1", "Namespace", {"metadata": _block("metadata", _METADATA)})
_NETWORK_POLICY = _workload(
    "networking.k8s.io/v1",
    "NetworkPolicy",
    {
        "pod_selector": _block("podSelector", _LABEL_SELECTOR),
        "policy_types": _v("policyTypes"),
        "ingress": _blocks("ingress", {"from": _blocks("from", _PEER), "ports": _POLICY_PORTS}),
        "egress": _blocks("egress", {"to": _blocks("to", _PEER), "ports": _POLICY_PORTS}),
    },
)
_BINDING_FIELDS = {"metadata": _block("metadata", _METADATA), "role_ref": _ROLE_REF, "subject": _SUBJECTS}
_ROLE_BINDING = TypedKind("rbac.authorization.k8s.io/v1", "RoleBinding", _BINDING_FIELDS)
_CLUSTER_ROLE_BINDING = TypedKind("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", _BINDING_FIELDS)
_SERVICE = _workload(
    "v1",
    "Service",
    {
        "type": _v("type"),
        "selector": _map("selector"),
        "load_balancer_class": _v("loadBalancerClass"),
        "load_balancer_source_ranges": _v("loadBalancerSourceRanges"),
        "external_traffic_policy": _v("externalTrafficPolicy"),
        "port": _blocks(
            "ports",
            {
                "name": _v("name"),
                "port": _v("port"),
                "target_port": _v("targetPort", _int_or_string),
                "node_port": _v("nodePort"),
                "protocol": _v("protocol"),
            },
        ),
    },
)
_INGRESS = _workload("networking.k8s.io/v1", "Ingress", {"ingress_class_name": _v("ingressClassName")})

TYPED: dict[str, TypedKind] = {
    "kubernetes_deployment": _DEPLOYMENT,
    "kubernetes_deployment_v1": _DEPLOYMENT,
    "kubernetes_stateful_set": _STATEFUL_SET,
    "kubernetes_stateful_set_v1": _STATEFUL_SET,
    "kubernetes_daemonset": _DAEMON_SET,
    "kubernetes_daemon_set_v1": _DAEMON_SET,
    "kubernetes_job": _JOB,
    "kubernetes_job_v1": _JOB,
    "kubernetes_cron_job_v1": _CRON_JOB,
    "kubernetes_pod": _POD,
    "kubernetes_pod_v1": _POD,
    "kubernetes_namespace": _NAMESPACE,
    "kubernetes_namespace_v1": _NAMESPACE,
    "kubernetes_network_policy": _NETWORK_POLICY,
    "kubernetes_network_policy_v1": _NETWORK_POLICY,
    "kubernetes_role_binding": _ROLE_BINDING,
    "kubernetes_role_binding_v1": _ROLE_BINDING,
    "kubernetes_cluster_role_binding": _CLUSTER_ROLE_BINDING,
    "kubernetes_cluster_role_binding_v1": _CLUSTER_ROLE_BINDING,
    "kubernetes_service": _SERVICE,
    "kubernetes_service_v1": _SERVICE,
    "kubernetes_ingress_v1": _INGRESS,
}
"""Typed hashicorp/kubernetes resources -> the object they declare (the unversioned names are the provider's
deprecated aliases of the `_v1` schemas)."""

NOT_MAPPED: dict[str, str] = {
    "kubernetes_ingress": (
        "the provider's networking.k8s.io/v1beta1 Ingress, which no rule reads; use kubernetes_ingress_v1"
    ),
    "kubernetes_cron_job": "the provider's batch/v1beta1 CronJob, which no rule reads; use kubernetes_cron_job_v1",
}

NOT_ON_TERRAFORM: dict[str, str] = {
    "mlp-prod-data-protected": "reads Pulumi's protect and retainOnDelete; prevent_destroy is not in plan JSON",
}
"""Rules no Terraform plan can make fire, with the reason (counted by scripts/terraform_rule_coverage.py)."""

MANIFEST_TYPES = frozenset({"kubernetes_manifest", "kubectl_manifest"})
KUBERNETES_TYPES: frozenset[str] = frozenset({*MANIFEST_TYPES, "helm_release", *TYPED, *NOT_MAPPED})
"""Every Terraform type this module answers for (mapped, or skipped with a reason of its own)."""


def _convert(value: Any, fields: Mapping[str, Field]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tf_name, spec in fields.items():
        item = value.get(tf_name)
        if item is None or item == "" or item == []:
            continue  # unset: the SDKv2 provider plans zero values, the API omits them
        if item is UNKNOWN:
            out[spec.name] = UNKNOWN
            continue
        if spec.shape == "value":
            out[spec.name] = spec.convert(item) if spec.convert else item
        elif spec.shape == "map":
            out[spec.name] = dict(item) if isinstance(item, Mapping) else item
        elif spec.shape == "block":
            block = item[0] if isinstance(item, list) and item else item
            if isinstance(block, list):
                continue  # an empty block list is an absent block
            out[spec.name] = _convert(block, spec.children) if isinstance(block, Mapping) else block
        else:
            items = [
                e if e is UNKNOWN else _convert(e, spec.children)
                for e in item
                if isinstance(e, Mapping) or e is UNKNOWN
            ]
            if items:
                out[spec.name] = items
    return out


def _typed(tf_type: str, address: str, values: Mapping[str, Any]) -> Resource:
    kind = TYPED[tf_type]
    inputs = {"apiVersion": kind.api_version, "kind": kind.kind, **_convert(values, kind.fields)}
    return _resource(type_token(kind.api_version, kind.kind), address, inputs)


# --- manifests ------------------------------------------------------------------------------------------------


def _resource(token: str, address: str, inputs: Mapping[str, Any]) -> Resource:
    return Resource(type=token, name=address, inputs=inputs, tags={}, options={}, references={}, source="terraform")


def _from_object(tf_type: str, address: str, obj: Any, what: str) -> Resource | Skipped:
    if obj is UNKNOWN:
        return Skipped(address, tf_type, f"{what} known after apply")
    if obj is None:
        return Skipped(address, tf_type, f"no {what} in the planned values")
    if not isinstance(obj, Mapping):
        return Skipped(address, tf_type, f"{what} is not a Kubernetes object (a mapping with apiVersion and kind)")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if is_unknown(api_version) or is_unknown(kind):
        return Skipped(address, tf_type, f"{what}: apiVersion or kind known after apply")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version or not kind:
        return Skipped(address, tf_type, f"{what} has no apiVersion or kind")
    inputs = {str(k): v for k, v in obj.items() if k != "status"}
    return _resource(type_token(api_version, kind), address, inputs)


def _yaml_object(tf_type: str, address: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        # The reason names the line only: the body may hold secrets.
        return Skipped(address, tf_type, f"yaml_body is not one YAML document{where}")


def _set_path(obj: Any, path: list[str], value: Any) -> None:
    node = obj
    for key in path[:-1]:
        child = node.get(key) if isinstance(node, dict) else None
        if child is UNKNOWN:
            return
        if not isinstance(child, dict):
            return
        node = child
    if isinstance(node, dict) and path[-1] in node:
        node[path[-1]] = value


def _kubectl(tf_type: str, address: str, values: Mapping[str, Any]) -> Resource | Skipped:
    body = values.get("yaml_body")
    if body is None:
        body = values.get("yaml_body_parsed")
    if body is UNKNOWN:
        return Skipped(address, tf_type, "yaml_body known after apply")
    if not isinstance(body, str):
        return Skipped(address, tf_type, "no yaml_body")
    parsed = _yaml_object(tf_type, address, body)
    if isinstance(parsed, Skipped):
        return parsed
    found = _from_object(tf_type, address, parsed, "yaml_body")
    if isinstance(found, Skipped):
        return found
    inputs = copy.deepcopy(dict(found.inputs))
    override = values.get("override_namespace")
    if override is UNKNOWN or (isinstance(override, str) and override):
        metadata = inputs.get("metadata")
        inputs["metadata"] = {**(metadata if isinstance(metadata, Mapping) else {}), "namespace": override}
    sensitive = values.get("sensitive_fields")
    if sensitive is UNKNOWN:
        return Skipped(address, tf_type, "sensitive_fields known after apply")
    paths = [str(p) for p in sensitive or []]
    if not paths and inputs.get("kind") == "Secret" and inputs.get("apiVersion") == "v1":
        paths = ["data"]  # the providers' default for Secrets
    for path in paths:
        _set_path(inputs, path.split("."), UNKNOWN)
    return _resource(found.type, address, inputs)


# --- Helm releases --------------------------------------------------------------------------------------------


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """The provider's mergeMaps: maps merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value) if isinstance(value, Mapping | list) else value
    return out


_INDEX = re.compile(r"^(.*)\[(\d+)\]$")


def helm_path(name: str) -> list[str | int]:
    """Helm's `--set` key path: `a.b\\.c[1]` -> ['a', 'b.c', 1]."""
    parts: list[str | int] = []
    current = ""
    escaped = False
    for ch in name:
        if escaped:
            current += ch
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ".":
            parts.extend(_split_index(current))
            current = ""
        else:
            current += ch
    parts.extend(_split_index(current))
    return parts


def _split_index(segment: str) -> list[str | int]:
    indexes: list[int] = []
    while match := _INDEX.match(segment):
        segment, index = match.group(1), int(match.group(2))
        indexes.insert(0, index)
    return [segment, *indexes]


def _typed_value(text: str) -> Any:
    """strvals' typedVal for `type = "auto"`: booleans, null and integers, else the string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if text == "0" or (re.fullmatch(r"[+-]?\d+", text) and not text.startswith("0")):
        return int(text)
    return text


def _splits(text: str) -> bool:
    """Whether strvals would read more than one value from `text` (an unescaped comma, or a {list})."""
    unescaped = re.sub(r"\\.", "", text)
    return "," in unescaped or unescaped.startswith("{")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _assign(values: dict[str, Any], path: list[str | int], value: Any) -> None:
    node: Any = values
    for i, key in enumerate(path):
        last = i == len(path) - 1
        if isinstance(key, int):
            if not isinstance(node, list):
                return
            while len(node) <= key:
                node.append(None)
            if last:
                node[key] = value
                return
            nxt = path[i + 1]
            if not isinstance(node[key], dict | list) or node[key] is UNKNOWN:
                node[key] = [] if isinstance(nxt, int) else {}
            node = node[key]
            continue
        if not isinstance(node, dict):
            return
        if last:
            node[key] = value
            return
        nxt = path[i + 1]
        child = node.get(key)
        if child is UNKNOWN:
            return  # inside a value that is unknown already
        if isinstance(nxt, int) and not isinstance(child, list):
            node[key] = []
        elif not isinstance(nxt, int) and not isinstance(child, dict):
            node[key] = {}
        node = node[key]


def _entries(block: Any) -> list[Any]:
    if block is None:
        return []
    if block is UNKNOWN:
        return [UNKNOWN]
    return list(block) if isinstance(block, list) else [block]


def helm_values(values: Mapping[str, Any]) -> Any:
    """The values a helm_release passes to its chart, as the provider builds them; UNKNOWN where not knowable."""
    merged: dict[str, Any] = {}
    for document in _entries(values.get("values")):
        if document is UNKNOWN:
            return UNKNOWN  # an unknown document may set any key
        if not isinstance(document, str) or not document.strip():
            continue
        try:
            parsed = yaml.safe_load(document)
        except yaml.YAMLError:
            return UNKNOWN  # Helm fails the release; nothing here is certain
        if isinstance(parsed, Mapping):
            merged = _merge(merged, parsed)
    for attribute in ("set", "set_list", "set_sensitive"):
        for entry in _entries(values.get(attribute)):
            if not isinstance(entry, Mapping):
                return UNKNOWN
            name = entry.get("name")
            if not isinstance(name, str):
                return UNKNOWN  # an unknown name may land anywhere
            if attribute == "set_sensitive":
                value: Any = UNKNOWN  # never read: -json writes it in plain text
            elif attribute == "set_list":
                value = _list_value(entry.get("value"))
            else:
                value = _set_value(entry.get("value"), entry.get("type"))
            if entry.get("type") == "literal":
                merged[name] = value
            else:
                _assign(merged, helm_path(name), value)
    return merged


def _set_value(raw: Any, kind: Any) -> Any:
    if raw is UNKNOWN or kind is UNKNOWN or not isinstance(raw, str):
        return UNKNOWN if raw is UNKNOWN or kind is UNKNOWN else raw
    if kind == "literal":
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError:
            return UNKNOWN
    if _splits(raw):
        return UNKNOWN
    return _unescape(raw) if kind == "string" else _typed_value(_unescape(raw))


def _list_value(raw: Any) -> Any:
    if raw is UNKNOWN or not isinstance(raw, list):
        return UNKNOWN
    if any(item is UNKNOWN or (isinstance(item, str) and _splits(item)) for item in raw):
        return UNKNOWN
    return [_typed_value(_unescape(str(item))) for item in raw if item is not None]


def _helm(tf_type: str, address: str, values: Mapping[str, Any]) -> Resource:
    inputs: dict[str, Any] = {}
    for tf_name, name in (("name", "name"), ("chart", "chart"), ("version", "version"), ("namespace", "namespace")):
        value = values.get(tf_name)
        if value is not None and value != "":
            inputs[name] = value
    repository = values.get("repository")
    if repository is not None and repository != "":
        inputs["repositoryOpts"] = {"repo": repository}
    for tf_name, name in (("atomic", "atomic"), ("create_namespace", "createNamespace"), ("devel", "devel")):
        if values.get(tf_name) is not None:
            inputs[name] = values[tf_name]
    inputs["values"] = helm_values(values)
    return _resource(HELM_RELEASE, address, inputs)


# --- entry point ----------------------------------------------------------------------------------------------


def kubernetes_resources(tf_type: str, address: str, values: Mapping[str, Any]) -> tuple[list[Resource], list[Skipped]]:
    """The normalized resources (or the reasons for skipping) of one Terraform resource change of a type in
    `KUBERNETES_TYPES`, from its `after` values (unknown values as UNKNOWN)."""
    if tf_type in NOT_MAPPED:
        return [], [Skipped(address, tf_type, NOT_MAPPED[tf_type])]
    if tf_type not in KUBERNETES_TYPES:
        return [], [
            Skipped(address, tf_type, f"no mapping for {tf_type} (see policies/sources/terraform_kubernetes.py)")
        ]
    found: Resource | Skipped
    if tf_type == "kubernetes_manifest":
        found = _from_object(tf_type, address, values.get("manifest"), "manifest")
    elif tf_type == "kubectl_manifest":
        found = _kubectl(tf_type, address, values)
    elif tf_type == "helm_release":
        found = _helm(tf_type, address, values)
    else:
        found = _typed(tf_type, address, values)
    return ([found], []) if isinstance(found, Resource) else ([], [found])
