"""The key settings of each planned resource, one short line per resource, as `mlp plan` shows them (table, tree
and Markdown): what a reviewer checks first (sizes, GPUs, encryption, exposure), read from the resource's inputs.

A table by type token; a bucket's line also reads the resources that configure it (versioning, encryption, public
access block, lifecycle), which reference it by its `bucket` input. Pure and cheap to import: no rich, no Pulumi.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from mlplatform.infra.gpu_pools.documents import POOL_LABEL

GPU = "nvidia.com/gpu"
WARM_PRIORITY = "gpu-warm-capacity"

NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
INFERENCE_SERVICE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
RAY_CLUSTER = "kubernetes:ray.io/v1:RayCluster"
RDS_INSTANCE = "aws:rds/instance:Instance"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
BUCKET_ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
BUCKET_PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
BUCKET_OBJECT_LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"


class SettingsResource(Protocol):
    """What the settings read of a planned resource (mlp.planner.PlannedResource has it)."""

    @property
    def type(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def layer(self) -> str: ...

    @property
    def inputs(self) -> dict[str, Any]: ...

    @property
    def references(self) -> dict[str, list[str]]: ...


def _get(d: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _yes(value: Any) -> str:
    return "on" if value in (True, "true") else "off"


def _int(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _gpus_of(pod: Mapping[str, Any]) -> int:
    """GPUs a pod asks for (its containers' limits, else requests)."""
    total = 0
    for container in pod.get("containers") or []:
        resources = container.get("resources") or {}
        total += _int((resources.get("limits") or {}).get(GPU) or (resources.get("requests") or {}).get(GPU) or 0)
    return total


def _pool_of(pod: Mapping[str, Any]) -> str:
    pool = _get(pod, "nodeSelector", POOL_LABEL)
    return f" on {pool}" if pool else ""


def _requirements(spec: Mapping[str, Any]) -> dict[str, list[str]]:
    reqs = _get(spec, "template", "spec", "requirements") or []
    return {str(q.get("key")): [str(v) for v in q.get("values") or []] for q in reqs if isinstance(q, dict)}


def _compact(values: Sequence[str], shown: int = 3) -> str:
    return ",".join(values[:shown]) + (f" +{len(values) - shown}" if len(values) > shown else "")


def nodepool(inputs: Mapping[str, Any]) -> str:
    """Instance types or families, capacity types, the GPU (and CPU) limits, disruption, a reservation."""
    spec = inputs.get("spec") or {}
    reqs = _requirements(spec)
    types = reqs.get("node.kubernetes.io/instance-type") or reqs.get("karpenter.k8s.aws/instance-family") or []
    capacity = "/".join(reqs.get("karpenter.sh/capacity-type") or ["on-demand"])
    limits = spec.get("limits") or {}
    parts = [f"{_compact(sorted(types)) or 'any type'} {capacity}"]
    if _int(limits.get(GPU) or 0):
        parts.append(f"GPUs <= {limits[GPU]}")
    if limits.get("cpu"):
        parts.append(f"cpu <= {limits['cpu']}")
    disruption = spec.get("disruption") or {}
    if disruption.get("consolidationPolicy"):
        parts.append(f"{disruption['consolidationPolicy']} {disruption.get('consolidateAfter', '')}".strip())
    zones = reqs.get("topology.kubernetes.io/zone")
    if zones:
        parts.append(f"zone {','.join(zones)}")
    return ", ".join(parts)


def nodeclass(inputs: Mapping[str, Any]) -> str:
    """AMI, root disk (size, type, encryption), IMDS, a capacity reservation."""
    spec = inputs.get("spec") or {}
    amis = [str(t.get("alias") or t.get("id") or t.get("name")) for t in spec.get("amiSelectorTerms") or []]
    disks = [m.get("ebs") or {} for m in spec.get("blockDeviceMappings") or []]
    parts = [",".join(amis) or "ami ?"]
    for disk in disks:
        encrypted = "encrypted" if disk.get("encrypted") in (True, "true") else "UNENCRYPTED"
        parts.append(f"{disk.get('volumeSize')} {disk.get('volumeType', '')} {encrypted}")
    parts.append(f"IMDSv2 {_get(spec, 'metadataOptions', 'httpTokens') or 'optional'}")
    reservations = [str(t.get("id") or t.get("tags")) for t in spec.get("capacityReservationSelectorTerms") or []]
    if reservations:
        parts.append(f"reservation {','.join(reservations)}")
    return ", ".join(parts)


def node_group_gpus(inputs: Mapping[str, Any]) -> tuple[int, int, int] | None:
    """A managed node group of GPU instances (its first type): GPUs per node, and in all at its minimum and
    maximum size; None for other instances."""
    from mlplatform.infra.catalog import gpu as gpu_catalog

    types = inputs.get("instanceTypes") or []
    spec = gpu_catalog.gpu_instance(str(types[0])) if types else None
    if spec is None or not spec.gpu_count:
        return None
    n = spec.gpu_count
    return n, _int(_get(inputs, "scalingConfig", "minSize")) * n, _int(_get(inputs, "scalingConfig", "maxSize")) * n


def node_group(inputs: Mapping[str, Any]) -> str:
    """Instance types, capacity type, node counts and, for GPU instances, GPUs per node and in all."""
    types = [str(t) for t in inputs.get("instanceTypes") or []]
    low, high = _get(inputs, "scalingConfig", "minSize"), _get(inputs, "scalingConfig", "maxSize")
    text = f"{','.join(types)} {inputs.get('capacityType', '')} {low}..{high} nodes"
    gpus = node_group_gpus(inputs)
    if gpus is not None:
        n, low_gpus, high_gpus = gpus
        text += f" x {n} GPU ({low_gpus}..{high_gpus} GPUs)"
    if inputs.get("amiType"):
        text += f", {inputs['amiType']}"
    return text


def _container_flag(args: Sequence[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return str(args[i + 1])
        if arg.startswith(f"{flag}="):
            return arg.split("=", 1)[1]
    return None


def _vllm_container(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    for container in pod.get("containers") or []:
        command = [str(c) for c in container.get("command") or []]
        if command[:2] == ["vllm", "serve"] or "vllm/vllm-openai" in str(container.get("image", "")):
            return dict(container)
    return None


def _synced_source(pod: Mapping[str, Any], target: str) -> str | None:
    """Where an init container's `aws s3 sync SRC DEST` fetches the model the server reads at `target`."""
    for container in pod.get("initContainers") or []:
        command = [str(c) for c in container.get("command") or []]
        if command[:3] == ["aws", "s3", "sync"]:
            paths = [c for c in command[3:] if not c.startswith("--")]
            if len(paths) == 2 and paths[1].rstrip("/") == target.rstrip("/"):
                bucket_path = paths[0].removeprefix("s3://").split("/", 1)
                return bucket_path[1].rstrip("/") if len(bucket_path) == 2 else paths[0]
    return None


def vllm_server(pod: Mapping[str, Any], container: Mapping[str, Any]) -> str:
    """`model, TP n, max_model_len m`: the model (its lake path when synced from S3), tensor parallel, context."""
    args = [str(a) for a in container.get("args") or []]
    model = _container_flag(args, "--model") or next((a for a in args if not a.startswith("-")), "?")
    model = _synced_source(pod, model) or model
    parts = [f"model {model}"]
    served = _container_flag(args, "--served-model-name")
    if served and served != model and "{{" not in served:
        parts[0] += f" as {served}"
    parts.append(f"TP {_container_flag(args, '--tensor-parallel-size') or 1}")
    max_len = _container_flag(args, "--max-model-len")
    if max_len:
        parts.append(f"max_model_len {max_len}")
    return ", ".join(parts)


def deployment(inputs: Mapping[str, Any]) -> str:
    """vLLM: model, tensor parallel, context, replicas x GPUs; a warm-capacity placeholder: GPUs held; else replicas,
    image and GPUs."""
    spec = inputs.get("spec") or {}
    pod = _get(spec, "template", "spec") or {}
    replicas = _int(spec.get("replicas", 1))
    gpus = _gpus_of(pod)
    per_replica = f"{replicas} replica(s)" + (f" x {gpus} GPU" if gpus else "") + _pool_of(pod)
    vllm = _vllm_container(pod)
    if vllm is not None:
        return f"vLLM {vllm_server(pod, vllm)}, {per_replica}"
    if pod.get("priorityClassName") == WARM_PRIORITY:
        return f"warm capacity: {replicas * gpus} GPU(s) held{_pool_of(pod)}"
    images = [str(c.get("image", "")).rsplit("/", 1)[-1] for c in pod.get("containers") or []]
    return f"{per_replica}, {_compact(images, 2)}"


def inference_service(inputs: Mapping[str, Any]) -> str:
    """Model format (or runtime), replicas, storage, GPUs per replica, a canary's share."""
    spec = inputs.get("spec") or {}
    predictor = spec.get("predictor") or {}
    model = predictor.get("model") or {}
    fmt = _get(model, "modelFormat", "name") or model.get("runtime") or "custom"
    low = predictor.get("minReplicas", 1)
    parts = [f"{fmt} {low}..{predictor.get('maxReplicas', low)} replicas"]
    gpus = _gpus_of({"containers": [model, *(predictor.get("containers") or [])]})
    parts.append(f"{gpus} GPU/replica{_pool_of(predictor)}" if gpus else "no GPU")
    if model.get("storageUri"):
        parts.append(str(model["storageUri"]))
    if fmt == "vllm":
        args = [str(a) for a in model.get("args") or []]
        tp = _container_flag(args, "--tensor-parallel-size")
        max_len = _container_flag(args, "--max-model-len")
        parts += [x for x in (f"TP {tp}" if tp else "", f"max_model_len {max_len}" if max_len else "") if x]
    canaries = spec.get("canary") or []
    if isinstance(canaries, dict):
        canaries = [canaries]
    for canary in canaries:
        parts.append(
            f"canary {canary.get('trafficPercent')}% {_get(canary, 'predictor', 'model', 'storageUri') or ''}".strip()
        )
    return ", ".join(parts)


def ray_cluster(inputs: Mapping[str, Any]) -> str:
    """The head's size and pool, each worker group's replicas and GPUs, the cluster's GPUs in all."""
    spec = inputs.get("spec") or {}
    head = _get(spec, "headGroupSpec", "template", "spec") or {}
    head_res = _get((head.get("containers") or [{}])[0], "resources", "requests") or {}
    parts = [f"head {head_res.get('cpu', '?')} cpu/{head_res.get('memory', '?')}{_pool_of(head)}"]
    low = high = 0
    for group in spec.get("workerGroupSpecs") or []:
        pod = _get(group, "template", "spec") or {}
        gpus = _gpus_of(pod)
        lo, hi = _int(group.get("minReplicas", 0)), _int(group.get("maxReplicas", 0))
        parts.append(f"{group.get('groupName')} {lo}..{hi}" + (f" x {gpus} GPU" if gpus else "") + _pool_of(pod))
        low, high = low + lo * gpus, high + hi * gpus
    parts.append(f"GPUs {low}..{high}")
    return ", ".join(parts)


def rds_instance(inputs: Mapping[str, Any]) -> str:
    """Engine and version, class, Multi-AZ, storage (and autoscaling ceiling), encryption, protection, backups."""
    storage = f"{inputs.get('allocatedStorage')}"
    if inputs.get("maxAllocatedStorage"):
        storage += f"..{inputs['maxAllocatedStorage']}"
    encrypted = "kms" if inputs.get("kmsKeyId") else "default key"
    return ", ".join(
        [
            f"{inputs.get('engine')} {inputs.get('engineVersion', '')}".strip(),
            str(inputs.get("instanceClass")),
            f"multi-AZ {_yes(inputs.get('multiAz'))}",
            f"{storage} GiB {inputs.get('storageType', '')}".strip(),
            f"encrypted {encrypted}" if inputs.get("storageEncrypted") in (True, "true") else "UNENCRYPTED",
            f"deletion protection {_yes(inputs.get('deletionProtection'))}",
            f"backups {inputs.get('backupRetentionPeriod', 0)} d",
            "PUBLIC" if inputs.get("publiclyAccessible") in (True, "true") else "private",
        ]
    )


def bucket_versioning(inputs: Mapping[str, Any]) -> str:
    return f"versioning {_get(inputs, 'versioningConfiguration', 'status') or '?'}"


def bucket_encryption(inputs: Mapping[str, Any]) -> str:
    rules = inputs.get("rules") or []
    algorithms = [str(_get(r, "applyServerSideEncryptionByDefault", "sseAlgorithm")) for r in rules]
    key = any(r.get("bucketKeyEnabled") in (True, "true") for r in rules)
    return f"SSE {','.join(algorithms) or 'none'}" + (" (bucket key)" if key else "")


def bucket_public_access(inputs: Mapping[str, Any]) -> str:
    keys = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    on = [k for k in keys if inputs.get(k) in (True, "true")]
    return "public access blocked" if len(on) == len(keys) else f"public access blocked {len(on)}/4 (PARTLY OPEN)"


def bucket_lifecycle(inputs: Mapping[str, Any]) -> str:
    rules = [r for r in inputs.get("rules") or [] if r.get("status") == "Enabled"]
    return f"lifecycle {len(rules)} rule(s)"


def bucket(resource: SettingsResource, companions: Sequence[SettingsResource]) -> str:
    """Versioning, encryption, public access and object lock from the bucket and the resources configuring it."""
    by_type = {c.type: c for c in companions}
    parts = []
    versioning = by_type.get(BUCKET_VERSIONING)
    parts.append(bucket_versioning(versioning.inputs) if versioning else "versioning off")
    encryption = by_type.get(BUCKET_ENCRYPTION)
    parts.append(bucket_encryption(encryption.inputs) if encryption else "SSE default (S3)")
    public = by_type.get(BUCKET_PUBLIC_ACCESS)
    parts.append(bucket_public_access(public.inputs) if public else "NO public access block")
    locked = resource.inputs.get("objectLockEnabled") in (True, "true") or BUCKET_OBJECT_LOCK in by_type
    parts.append(f"object lock {'on' if locked else 'off'}")
    lifecycle = by_type.get(BUCKET_LIFECYCLE)
    if lifecycle:
        parts.append(bucket_lifecycle(lifecycle.inputs))
    if resource.inputs.get("forceDestroy") in (True, "true"):
        parts.append("force destroy")
    return ", ".join(parts)


def _route_weights(inputs: Mapping[str, Any]) -> str:
    """`host -> service share%, ...`: where a weighted route (a canary split) sends requests; a backend's share is
    its weight over the rule's total (a missing weight is 1, as in the Gateway API)."""
    spec = inputs.get("spec") or {}
    rules = []
    for rule in spec.get("rules") or []:
        backends = [(b.get("name"), int(b.get("weight", 1))) for b in rule.get("backendRefs") or []]
        total = sum(w for _, w in backends) or 1
        rules.append(", ".join(f"{name} {100 * w / total:g}%" for name, w in backends))
    return f"{','.join(spec.get('hostnames') or ['*'])} -> {'; '.join(rules)}"


SETTINGS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "aws:ec2/vpc:Vpc": lambda i: f"cidr {i.get('cidrBlock')}",
    "aws:ec2/subnet:Subnet": lambda i: f"{i.get('cidrBlock')} in {i.get('availabilityZone')}",
    "aws:ec2/natGateway:NatGateway": lambda i: f"{i.get('connectivityType', 'public')}",
    "aws:ec2/vpcEndpoint:VpcEndpoint": lambda i: f"{i.get('serviceName')} ({i.get('vpcEndpointType')})",
    "aws:ec2/flowLog:FlowLog": lambda i: f"traffic {i.get('trafficType')} -> {i.get('logDestinationType')}",
    "aws:cloudwatch/logGroup:LogGroup": lambda i: (
        f"retention {i.get('retentionInDays')} d, kms {'yes' if i.get('kmsKeyId') else 'no'}"
    ),
    "aws:kms/key:Key": lambda i: f"rotation {_yes(i.get('enableKeyRotation'))}",
    "aws:sns/topic:Topic": lambda i: f"kms {'yes' if i.get('kmsMasterKeyId') else 'no'}",
    "aws:dynamodb/table:Table": lambda i: (
        f"{str(i.get('billingMode', 'PROVISIONED')).lower().replace('_', '-')}, "
        f"kms {'cmk' if _get(i, 'serverSideEncryption', 'kmsKeyArn') else 'aws-owned'}, "
        f"pitr {_yes(_get(i, 'pointInTimeRecovery', 'enabled'))}, "
        f"deletion protection {_yes(i.get('deletionProtectionEnabled'))}"
    ),
    "aws:eks/cluster:Cluster": lambda i: (
        f"k8s {i.get('version')}, endpoint "
        f"{'public+private' if _get(i, 'vpcConfig', 'endpointPublicAccess') else 'private'}, "
        f"secrets kms {'yes' if i.get('encryptionConfig') else 'no'}, "
        f"logs {len(i.get('enabledClusterLogTypes') or [])}/5, support {_get(i, 'upgradePolicy', 'supportType')}"
    ),
    NODE_GROUP: node_group,
    "aws:ec2/launchTemplate:LaunchTemplate": lambda i: (
        f"IMDSv2 {_get(i, 'metadataOptions', 'httpTokens')}, "
        f"{len(i.get('tagSpecifications') or [])} tag specs, "
        f"encrypted {all(_get(b, 'ebs', 'encrypted') == 'true' for b in i.get('blockDeviceMappings') or [])}"
    ),
    "aws:eks/addon:Addon": lambda i: f"{i.get('addonName')} {i.get('addonVersion')}",
    "aws:eks/accessEntry:AccessEntry": lambda i: f"{i.get('principalArn')}",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": lambda i: (
        f"{str(i.get('policyArn', '')).rsplit('/', 1)[-1]} ({_get(i, 'accessScope', 'type')})"
    ),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": lambda i: str(i.get("policyArn", "")).rsplit("/", 1)[-1],
    RDS_INSTANCE: rds_instance,
    BUCKET_VERSIONING: bucket_versioning,
    BUCKET_ENCRYPTION: bucket_encryption,
    BUCKET_PUBLIC_ACCESS: bucket_public_access,
    BUCKET_LIFECYCLE: bucket_lifecycle,
    "kubernetes:helm.sh/v3:Release": lambda i: f"{i.get('chart')} {i.get('version')}",
    NODEPOOL: nodepool,
    NODECLASS: nodeclass,
    DEPLOYMENT: deployment,
    INFERENCE_SERVICE: inference_service,
    RAY_CLUSTER: ray_cluster,
    "kubernetes:gateway.networking.k8s.io/v1:Gateway": lambda i: ", ".join(
        f"{li.get('protocol')} :{li.get('port')} {li.get('hostname', '*')}" for li in _get(i, "spec", "listeners") or []
    ),
    "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute": _route_weights,
}


class KeySettings:
    """Key settings of the resources of one plan: a bucket's line reads the resources that configure it."""

    def __init__(self, resources: Iterable[SettingsResource]) -> None:
        self._by_bucket: dict[tuple[str, str], list[SettingsResource]] = {}
        for r in resources:
            for target in r.references.get("bucket") or []:
                self._by_bucket.setdefault((r.layer, target), []).append(r)

    def __call__(self, resource: SettingsResource) -> str:
        try:
            if resource.type == BUCKET:
                return bucket(resource, self._by_bucket.get((resource.layer, resource.name), []))
            fn = SETTINGS.get(resource.type)
            return fn(resource.inputs) if fn is not None else ""
        except (TypeError, KeyError, AttributeError, ValueError, IndexError):
            return ""
