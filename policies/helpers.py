"""Small pure helpers the rules share: IAM documents, Kubernetes pod specs, tags."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mlplatform.policies.model import UNKNOWN, Resource, peek

# --- IAM ------------------------------------------------------------------------------------------------------


def policy_document(value: Any) -> dict[str, Any] | None:
    """A policy document from a JSON string or a mapping; None when unknown or not a document."""
    if value is UNKNOWN or value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, Mapping) else None  # type: ignore[return-value]


def statements(document: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if not document:
        return []
    found = document.get("Statement", [])
    if isinstance(found, Mapping):
        return [found]
    return [s for s in found if isinstance(s, Mapping)] if isinstance(found, list) else []


def as_list(value: Any) -> list[Any]:
    if value is None or value is UNKNOWN:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def allow_statements(document: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    return [s for s in statements(document) if s.get("Effect") == "Allow"]


def principal_is_wildcard(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any(v == "*" or (isinstance(v, list) and "*" in v) for v in principal.values())
    return False


# Input holding an IAM policy document, by type.
POLICY_INPUTS: dict[str, str] = {
    "aws:iam/policy:Policy": "policy",
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}
POLICY_TYPES: tuple[str, ...] = (*POLICY_INPUTS, "aws:iam/role:Role")


def identity_policies(resource: Resource) -> list[dict[str, Any]]:
    """Identity policy documents of a resource (inline role policies included)."""
    docs = []
    if resource.type in POLICY_INPUTS:
        doc = policy_document(resource.inputs.get(POLICY_INPUTS[resource.type]))
        if doc:
            docs.append(doc)
    elif resource.type == "aws:iam/role:Role":
        for inline in as_list(resource.inputs.get("inlinePolicies")):
            if isinstance(inline, Mapping):
                doc = policy_document(inline.get("policy"))
                if doc:
                    docs.append(doc)
    return docs


# --- Kubernetes -----------------------------------------------------------------------------------------------

WORKLOAD_TYPES: tuple[str, ...] = (
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
    "kubernetes:batch/v1:Job",
    "kubernetes:batch/v1:CronJob",
    "kubernetes:core/v1:Pod",
    "kubernetes:ray.io/v1:RayCluster",
)


def pod_specs(resource: Resource) -> list[tuple[str, Mapping[str, Any]]]:
    """(where, pod spec) for each pod template a workload resource declares."""
    spec = resource.inputs.get("spec")
    if not isinstance(spec, Mapping):
        return []
    kind = resource.type.rsplit(":", 1)[-1]
    found: list[tuple[str, Any]] = []
    if kind == "Pod":
        found.append(("spec", spec))
    elif kind == "CronJob":
        found.append(
            (
                "spec.jobTemplate.spec.template.spec",
                spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec"),
            )
        )
    elif kind == "RayCluster":
        found.append(
            ("spec.headGroupSpec.template.spec", spec.get("headGroupSpec", {}).get("template", {}).get("spec"))
        )
        for i, group in enumerate(as_list(spec.get("workerGroupSpecs"))):
            if isinstance(group, Mapping):
                found.append((f"spec.workerGroupSpecs[{i}].template.spec", group.get("template", {}).get("spec")))
    else:
        found.append(("spec.template.spec", spec.get("template", {}).get("spec")))
    return [(where, pod) for where, pod in found if isinstance(pod, Mapping)]


def containers(pod: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for key in ("initContainers", "containers"):
        for c in as_list(pod.get(key)):
            if isinstance(c, Mapping):
                yield f"{key}[{c.get('name', '?')}]", c


def metadata_name(resource: Resource) -> str:
    meta = resource.inputs.get("metadata")
    return str(meta.get("name", resource.name)) if isinstance(meta, Mapping) else resource.name


def metadata_namespace(resource: Resource) -> str:
    meta = resource.inputs.get("metadata")
    return str(meta.get("namespace", "default")) if isinstance(meta, Mapping) else "default"


def gpu_count(resources: Mapping[str, Any] | None, key: str) -> int:
    if not isinstance(resources, Mapping):
        return 0
    values = resources.get(key)
    if not isinstance(values, Mapping):
        return 0
    raw = values.get("nvidia.com/gpu")
    try:
        return int(str(raw)) if raw is not None else 0
    except ValueError:
        return 0


def by_type(resources: Sequence[Resource], *types: str) -> list[Resource]:
    return [r for r in resources if r.type in types]


# --- S3 -------------------------------------------------------------------------------------------------------

BUCKET = "aws:s3/bucket:Bucket"
ACCESS_LOG_PURPOSE = ("mlplatform.io/purpose", "s3-access-logs")


class ReferenceIndex:
    """Resources of one type, found by what their `prop` input points at (a reference or an id value).

    Stack rules look up, for every bucket or VPC, the resources that configure it; the index keeps that linear in
    the number of resources.
    """

    def __init__(self, resources: Sequence[Resource], type_token: str, prop: str) -> None:
        self._by_key: dict[str, list[Resource]] = {}
        for r in resources:
            if r.type != type_token:
                continue
            keys = set(r.references.get(prop, ()))
            value = peek(r.inputs, prop)
            if isinstance(value, str):
                keys.add(value)
            for key in keys:
                self._by_key.setdefault(key, []).append(r)

    def find(self, target: Resource, *values: Any) -> list[Resource]:
        keys = [target.name, *(v for v in values if isinstance(v, str))]
        found: dict[str, Resource] = {}
        for key in keys:
            for r in self._by_key.get(key, []):
                found[r.name] = r
        return list(found.values())


def bucket_index(resources: Sequence[Resource], type_token: str) -> ReferenceIndex:
    return ReferenceIndex(resources, type_token, "bucket")


def settings_of(index: ReferenceIndex, bucket: Resource) -> list[Resource]:
    """The separate resources (encryption, versioning, ...) that configure `bucket`."""
    return index.find(bucket, peek(bucket.inputs, "bucket"), peek(bucket.inputs, "id"))


def is_access_log_bucket(bucket: Resource) -> bool:
    key, value = ACCESS_LOG_PURPOSE
    return bucket.tags.get(key) == value


def actions_of(statement: Mapping[str, Any]) -> list[str]:
    return [str(a) for a in as_list(statement.get("Action"))]


def not_actions_of(statement: Mapping[str, Any]) -> list[str]:
    """The `NotAction` of a statement: an Allow with NotAction grants every action except these."""
    return [str(a) for a in as_list(statement.get("NotAction"))]


def action_matches(pattern: str, action: str) -> bool:
    """Whether an IAM action pattern (`s3:Get*`, `LAMBDA:*`) covers `action`: IAM action names ignore case."""
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def resources_of(statement: Mapping[str, Any]) -> list[str]:
    return [str(a) for a in as_list(statement.get("Resource"))]


def policy_resources_types() -> tuple[str, ...]:
    return POLICY_TYPES


# --- GPU pools ------------------------------------------------------------------------------------------------

NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
NODEGROUP = "aws:eks/nodeGroup:NodeGroup"


def nodepool_requirements(pool: Resource) -> dict[str, Mapping[str, Any]]:
    reqs = pool.get("spec.template.spec.requirements")
    return {str(r.get("key")): r for r in as_list(reqs) if isinstance(r, Mapping)}


def nodepool_instance_types(pool: Resource) -> tuple[list[str], list[str]]:
    """(families, instance types) a NodePool allows with `In` requirements."""
    reqs = nodepool_requirements(pool)

    def values(key: str) -> list[str]:
        req = reqs.get(key)
        return [str(v) for v in as_list(req.get("values"))] if req and req.get("operator") == "In" else []

    return values("karpenter.k8s.aws/instance-family"), values("node.kubernetes.io/instance-type")


def is_gpu_nodepool(pool: Resource) -> bool:
    from mlplatform.infra.catalog import gpu as gpu_catalog

    reqs = nodepool_requirements(pool)
    manufacturer = reqs.get("karpenter.k8s.aws/instance-gpu-manufacturer")
    if manufacturer and "nvidia" in as_list(manufacturer.get("values")):
        return True
    count = reqs.get("karpenter.k8s.aws/instance-gpu-count")
    if count and count.get("operator") in ("Exists", "Gt", "Gte"):
        return True
    families, types = nodepool_instance_types(pool)
    return any(f in gpu_catalog.nvidia_families() for f in families) or any(
        t in gpu_catalog.nvidia_instance_types() for t in types
    )


def is_gpu_nodegroup(group: Resource) -> bool:
    from mlplatform.infra.catalog import gpu as gpu_catalog

    ami = str(group.inputs.get("amiType") or "")
    return "NVIDIA" in ami or any(
        t in gpu_catalog.nvidia_instance_types() for t in as_list(group.inputs.get("instanceTypes"))
    )
