"""Deploy order: would the engine create and destroy a plan's resources in an order that works?

In a real `pulumi up` the engine orders resources only by the Outputs that flow between them and by `dependsOn`.
An input that names another resource with a plain string (`cluster_name="mlp-dev"` given as a constant, an ARN
built with an f-string) carries no ordering: the resource is attempted before the one it names exists
(`ResourceNotFoundException`), and `pulumi destroy` may delete the named resource first. A Kubernetes object that
a controller finalizes must be deleted while that controller, and the AWS permissions it works with, still run;
otherwise it stays Terminating, the destroy hangs, and what the controller made in AWS is left behind.

This module owns both checks, as pure functions over an offline plan (`mlp.planner.Plan`, read through its
dataclasses only; nothing here runs Pulumi):
- `creation_violations`: every input value that holds another planned AWS resource's physical identifier (name,
  ARN, id, endpoint, matched as a whole token) or names a planned Kubernetes object (namespace, service account,
  secret, node class, ...) needs a dependency path to it, unless that resource is in an earlier layer or an
  entry of `EXEMPTIONS` says why not (for some, because the two are ordered the other way round on purpose);
- `deletion_violations`: every object of a kind in `FINALIZED_BY` depends on its controller and, in the same
  layer, on the controller's Pod Identity association and the policies of its role;
- `check_order` runs both, `render` writes the report, `exemptions_used` says which exemptions applied.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from mlplatform.infra.cluster.documents import ADDON_POD_IDENTITY
from mlplatform.infra.gpu_pools.documents import KARPENTER_SERVICE_ACCOUNT
from mlplatform.infra.ingress.documents import SERVICE_ACCOUNT as LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT

if TYPE_CHECKING:
    from mlplatform.mlp.planner import Plan, PlannedResource

# -- what counts as a reference -------------------------------------------------------------------------------

IDENTIFIER_KEYS: tuple[str, ...] = (
    "id",
    "arn",
    "name",
    "bucket",
    "identifier",
    "address",
    "endpoint",
    "url",
    "keyId",
    "nodeGroupName",
    "uniqueId",
)
"""Output keys whose string values are an AWS resource's physical identifiers."""

MIN_IDENTIFIER_LENGTH = 6
"""Shorter values ("dev", "main") occur everywhere by chance: a resource named that briefly is not looked for."""

TOKEN_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
"""An identifier occurs in a string only where the characters on both sides of it are NOT one of these.

So `mlp-dev` is not found in `mlp-dev-karpenter` nor in `alias/mlp-dev-eks`, and is found in
`/aws/eks/mlp-dev/cluster`, `arn:aws:eks:us-east-1:123:cluster/mlp-dev` and `"mlp-dev"`. A dot separates tokens:
DNS names built from a physical name follow it with a dot (an RDS address, `<bucket>.s3.<region>.amazonaws.com`,
an SQS or EKS host), and an identifier that contains dots itself (an endpoint, a dotted bucket name) is still
matched whole. The price is that a bucket `logs-2024` would be read as named inside `logs-2024.archive`; S3
names with dots are rare (they break virtual-hosted TLS), so the trade is worth it."""

FREE_TEXT_KEYS = frozenset({"description"})
"""Inputs that are prose for people, at any depth: naming a resource there orders nothing."""

LABEL_KEYS = frozenset({"tags", "tagsAll", "labels"})
"""Maps of labels (AWS tags, Kubernetes labels and the tag selectors of an EC2NodeClass): a value there is a label
that matches resources by tag, not a name that needs the resource to exist."""


@dataclass(frozen=True)
class Exemption:
    """Why a reference that `creation_violations` would report must not order the referrer after the target."""

    reason: str
    reverse: bool = False
    """The two are ordered the other way round on purpose: the target must then depend on the referrer."""
    value: str | None = None
    """A regular expression the referring value must match whole for the exemption to apply (None: any value);
    other values of the same input are ordinary references."""


EXEMPTIONS: dict[tuple[str, str, str], Exemption] = {
    # (referrer type, input path prefix, target type) -> why. A prefix covers the input and everything below it.
    (
        "aws:cloudwatch/logGroup:LogGroup",
        "name",
        "aws:eks/cluster:Cluster",
    ): Exemption(
        "the control-plane log group /aws/eks/<cluster>/cluster is created before the cluster on purpose, so that "
        "EKS writes into a group with our retention and KMS key instead of creating its own (the cluster depends "
        "on the log group)",
        reverse=True,
        value=r"/aws/eks/[^/]+/cluster",
    ),
    (
        "aws:cloudwatch/logGroup:LogGroup",
        "name",
        "aws:codebuild/project:Project",
    ): Exemption(
        "a build project's log group /aws/codebuild/<project> is created before the project on purpose, so that "
        "the first build writes into a group with our retention and KMS key (the project names it in "
        "logsConfig and so depends on it)",
        reverse=True,
    ),
    (
        "aws:iam/role:Role",
        "assumeRolePolicy",
        "aws:codebuild/project:Project",
    ): Exemption(
        "a CodeBuild service role's trust policy names its own project in aws:SourceArn (the confused-deputy "
        "guard); the project needs the role first (serviceRole), so the ARN can only be spelled out, and IAM "
        "does not resolve condition values",
        reverse=True,
    ),
    (
        "aws:secretsmanager/secret:Secret",
        "name",
        "aws:eks/cluster:Cluster",
    ): Exemption(
        "secret names are namespaced by the platform's name prefix (mlp-<env>/mlflow/database), which the "
        "cluster's name shares; a secret's own name orders nothing, and Secrets Manager never reads it as a cluster"
    ),
    (
        "aws:dynamodb/table:Table",
        "name",
        "aws:eks/cluster:Cluster",
    ): Exemption(
        "the feature store's online tables are named <stack label>.<project>.<view> (infra.features), which the "
        "cluster's name shares; a table's own name orders nothing, and DynamoDB never reads it as a cluster",
        value=r"[^.]+\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*",
    ),
}


# -- Kubernetes object references -----------------------------------------------------------------------------

CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "ClusterIssuer",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterServingRuntime",
        "ClusterStorageContainer",
        "CSIDriver",
        "CustomResourceDefinition",
        "EC2NodeClass",
        "GatewayClass",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "NodePool",
        "PersistentVolume",
        "PriorityClass",
        "RuntimeClass",
        "StorageClass",
        "ValidatingWebhookConfiguration",
    }
)
"""Kinds without a namespace: a reference to one is by name alone."""


@dataclass(frozen=True)
class _RefRule:
    """Where a Kubernetes object names another: the dict at `at` (`a.b[].c`: `[]` walks a list) holds the name
    under `name_key`; the kind is `kind` unless the dict says otherwise under `kind_key`; the namespace is the
    referrer's own unless the dict gives one under `namespace_key`."""

    at: str
    kind: str
    name_key: str = "name"
    kind_key: str | None = None
    namespace_key: str | None = None


_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")

POD_SPEC_REFERENCES: tuple[_RefRule, ...] = (
    _RefRule("", "ServiceAccount", name_key="serviceAccountName"),
    _RefRule("", "ServiceAccount", name_key="serviceAccount"),  # the deprecated alias, still honoured
    _RefRule("", "PriorityClass", name_key="priorityClassName"),
    _RefRule("imagePullSecrets[]", "Secret"),
    _RefRule("volumes[].secret", "Secret", name_key="secretName"),
    _RefRule("volumes[].configMap", "ConfigMap"),
    _RefRule("volumes[].persistentVolumeClaim", "PersistentVolumeClaim", name_key="claimName"),
    _RefRule("volumes[].projected.sources[].secret", "Secret"),
    _RefRule("volumes[].projected.sources[].configMap", "ConfigMap"),
    *(
        rule
        for containers in _CONTAINER_LISTS
        for rule in (
            _RefRule(f"{containers}[].env[].valueFrom.secretKeyRef", "Secret"),
            _RefRule(f"{containers}[].env[].valueFrom.configMapKeyRef", "ConfigMap"),
            _RefRule(f"{containers}[].envFrom[].secretRef", "Secret"),
            _RefRule(f"{containers}[].envFrom[].configMapRef", "ConfigMap"),
        )
    ),
)
"""References a pod spec makes; a pod spec is any dict with `containers` or `serviceAccountName` (the template
of a Deployment, StatefulSet, DaemonSet or Job, and pod templates inside custom resources: a RayCluster's
groups, an InferenceService's predictor)."""

OBJECT_REFERENCES: dict[str, tuple[_RefRule, ...]] = {
    "NodePool": (_RefRule("spec.template.spec.nodeClassRef", "EC2NodeClass", kind_key="kind"),),
    "ScaledObject": (_RefRule("spec.scaleTargetRef", "Deployment", kind_key="kind"),),
    "ScaledJob": (_RefRule("spec.jobTargetRef.template.spec", "ServiceAccount", name_key="serviceAccountName"),),
    "RoleBinding": (
        _RefRule("subjects[]", "ServiceAccount", kind_key="kind", namespace_key="namespace"),
        _RefRule("roleRef", "Role", kind_key="kind"),
    ),
    "ClusterRoleBinding": (
        _RefRule("subjects[]", "ServiceAccount", kind_key="kind", namespace_key="namespace"),
        _RefRule("roleRef", "ClusterRole", kind_key="kind"),
    ),
    "Gateway": (_RefRule("spec", "GatewayClass", name_key="gatewayClassName"),),
    "HTTPRoute": (
        _RefRule("spec.parentRefs[]", "Gateway", kind_key="kind", namespace_key="namespace"),
        _RefRule("spec.rules[].backendRefs[]", "Service", kind_key="kind", namespace_key="namespace"),
    ),
    "Ingress": (
        _RefRule("spec.rules[].http.paths[].backend.service", "Service"),
        _RefRule("spec.defaultBackend.service", "Service"),
        _RefRule("spec", "IngressClass", name_key="ingressClassName"),
        _RefRule("spec.tls[]", "Secret", name_key="secretName"),
    ),
}
"""References by kind of the referring object, beyond its namespace and its pod specs."""

CLASS_NAME_KEYS: dict[str, str] = {"storageClassName": "StorageClass", "priorityClassName": "PriorityClass"}
"""Keys that name a cluster-wide class wherever they occur: in any object (a PVC, a StatefulSet's claim templates,
a Prometheus resource's storage spec) and in a Helm release's values, where charts use the same names."""

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
NAMESPACE_TYPE = "kubernetes:core/v1:Namespace"
POD_IDENTITY_ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
EKS_ADDON = "aws:eks/addon:Addon"
IAM_ROLE = "aws:iam/role:Role"
ROLE_POLICY_TYPES = ("aws:iam/rolePolicy:RolePolicy", "aws:iam/rolePolicyAttachment:RolePolicyAttachment")

# -- finalized objects and their controllers ------------------------------------------------------------------


@dataclass(frozen=True)
class Controller:
    """Who removes the finalizer of an object: a Helm chart (by its name, the last segment of the release's
    `chart`) or an EKS add-on (by `addonName`), and the service account whose Pod Identity gives it AWS access."""

    finalizer: str
    does: str
    chart: str | None = None
    addon: str | None = None
    service_account: str | None = None
    """For a chart: the default when the release's values do not set `serviceAccount.name`; its namespace is the
    release's. For an add-on: its fixed service account in kube-system."""


_EBS_CSI_ADDON = "aws-ebs-csi-driver"

FINALIZED_BY: dict[tuple[str, str], Controller] = {
    # (API group, kind) in any served version -> its controller.
    ("karpenter.sh", "NodePool"): Controller(
        # The pool's NodeClaims go with it; Karpenter drains each node and terminates its EC2 instance first.
        finalizer="karpenter.sh/termination",
        does="Karpenter drains the pool's nodes and terminates their EC2 instances",
        chart="karpenter",
        service_account=KARPENTER_SERVICE_ACCOUNT,
    ),
    ("karpenter.k8s.aws", "EC2NodeClass"): Controller(
        # Karpenter waits until no NodeClaim uses the class, then deletes the instance profile it created.
        finalizer="karpenter.k8s.aws/termination",
        does="Karpenter waits for the class's nodes to go and deletes the instance profile it created",
        chart="karpenter",
        service_account=KARPENTER_SERVICE_ACCOUNT,
    ),
    ("networking.k8s.io", "Ingress"): Controller(
        # The AWS Load Balancer Controller deletes the ALB, its listeners, target groups and security groups.
        finalizer="ingress.k8s.aws/resources",
        does="the AWS Load Balancer Controller deletes the ALB, its target groups and security groups",
        chart="aws-load-balancer-controller",
        service_account=LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT,
    ),
    ("core", "PersistentVolumeClaim"): Controller(
        # The claim's PersistentVolume (reclaim policy Delete) is released by the EBS CSI driver, which deletes
        # the EBS volume; without the driver the volume is left behind and the PV hangs in its finalizer.
        finalizer="external-provisioner.volume.kubernetes.io/finalizer",
        does="the EBS CSI driver deletes the claim's EBS volume",
        addon=_EBS_CSI_ADDON,
        service_account=ADDON_POD_IDENTITY[_EBS_CSI_ADDON][0],
    ),
    ("serving.kserve.io", "InferenceService"): Controller(
        # The KServe controller removes what it made for the service (deployments, services, routes).
        finalizer="inferenceservice.finalizers",
        does="the KServe controller removes the model server's deployments and routes",
        chart="kserve-resources",
    ),
    ("gateway.networking.k8s.io", "GatewayClass"): Controller(
        # Envoy Gateway v1.9.0 adds this finalizer to a class of its own while a Gateway uses it and removes it once
        # none does (`internal/provider/kubernetes/controller.go`: addFinalizer/removeFinalizer, the Gateway API's
        # GatewayClassFinalizerGatewaysExist). It puts none on Gateways or routes: a Gateway it no longer runs
        # leaves its proxies to the garbage collector (they are owned by the class).
        finalizer="gateway-exists-finalizer.gateway.networking.k8s.io",
        does="Envoy Gateway releases the class once no Gateway uses it",
        chart="gateway-helm",
    ),
    ("ray.io", "RayCluster"): Controller(
        # Set only with GCS fault tolerance: KubeRay deletes the cluster's keys in the external Redis first.
        finalizer="ray.io/gcs-ft-redis-cleanup-finalizer",
        does="KubeRay cleans the cluster's state out of its GCS store",
        chart="kuberay-operator",
    ),
    ("ray.io", "RayJob"): Controller(
        # KubeRay stops the running job and deletes the RayCluster it made for it.
        finalizer="ray.io/rayjob-finalizer",
        does="KubeRay stops the job and deletes the RayCluster it made for it",
        chart="kuberay-operator",
    ),
    ("ray.io", "RayService"): Controller(
        # No finalizer of its own, but the RayClusters KubeRay makes for it usually run with GCS fault tolerance
        # (what Ray Serve recommends), and so carry the RayCluster finalizer above.
        finalizer="ray.io/gcs-ft-redis-cleanup-finalizer on its RayClusters",
        does="KubeRay cleans the state of the service's RayClusters out of their GCS store",
        chart="kuberay-operator",
    ),
}

# -- results --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """A resource that the engine would create before, or delete after, a resource it needs."""

    kind: Literal["create", "delete"]
    resource: str
    """The logical name of the resource that needs the other one."""
    resource_type: str
    path: str
    """Where in its inputs it names the target (`spec.template.spec.serviceAccountName`, inside a JSON document
    `policy/Statement[0]/Resource[1]`); for a deletion, `metadata.finalizers`."""
    value: str
    """The string that names the target; for a deletion, the finalizer."""
    target: str
    """The logical name of the resource it needs."""
    target_type: str
    attribute: str = ""
    """The target's attribute the value holds (`name`, `arn`, `metadata.name`); for a deletion, what the target
    is to the controller (`the Helm release of the karpenter chart`, `the Pod Identity association of ...`)."""
    alternatives: tuple[str, ...] = ()
    """Other resources the same value names: a dependency path to any one of them would do."""
    reason: str = ""
    """For an exempted reference whose order is missing, why it must be the other way round; for a deletion,
    what the finalizer does."""
    reverse: bool = False
    """The target must depend on the resource (an exemption), not the other way round."""
    resource_layer: str = ""
    target_layer: str = ""
    attribute_value: str = field(default="", compare=False)
    """The identifier found in `value` (all of it, or a token inside it)."""

    def message(self) -> str:
        if self.kind == "delete":
            return (
                f"{self.resource} ({self.resource_type}) is finalized by {self.value} ({self.reason}) but has no "
                f"dependency path to {self.target} ({self.target_type}), {self.attribute}: destroy may remove "
                f"that first and leave the object Terminating; add depends_on=[{self.target}]"
            )
        value = _quote(self.value, self.attribute_value)
        head = f"{self.resource}.{self.path} = {value} names {self.target} ({self.target_type})"
        if self.reverse:
            return (
                f"{head}, which must be created after it ({self.reason}), but {self.target} has no dependency "
                f"path to {self.resource}: add depends_on=[{self.resource}] to {self.target}"
            )
        if self.target_layer != self.resource_layer:
            return (
                f"{head} of the {self.target_layer} layer, which is deployed after (and destroyed before) the "
                f"{self.resource_layer} layer: a layer may only name resources of the layers before it"
            )
        also = f" (the value also names {', '.join(self.alternatives)}; a path to one of them will do)"
        output = f"{self.target}.{_snake(self.attribute)}"
        if self.attribute == "metadata.name":
            fix = f"pass the Output ({output}) or add depends_on=[{self.target}]"
        elif self.value == self.attribute_value:
            fix = f"pass the Output ({output}), not a string"
        else:
            fix = f"build the value from the Output ({output}) with Output.format or apply, not from a string"
        return f"{head} but has no dependency path to it{also if self.alternatives else ''}: {fix}"


@dataclass(frozen=True)
class ExemptionUse:
    """A reference that `EXEMPTIONS` lets go unordered (a reversed one only when it is ordered the other way)."""

    resource: str
    path: str
    target: str
    target_type: str
    reason: str


@dataclass(frozen=True)
class OrderReport:
    creation: tuple[Violation, ...]
    deletion: tuple[Violation, ...]
    references_checked: int
    """Input values that name another planned resource, each checked for a dependency path."""
    finalized_checked: int
    """Finalized objects whose controller is in the plan, each checked for deletion order."""
    exemptions: tuple[ExemptionUse, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.creation and not self.deletion


# -- public API -----------------------------------------------------------------------------------------------


def creation_violations(plan: Plan) -> list[Violation]:
    """Inputs that name another planned resource without a dependency path to it (see the module docstring)."""
    return list(_Checker(plan).creation()[0])


def exemptions_used(plan: Plan) -> list[ExemptionUse]:
    """The references that `EXEMPTIONS` applied to, with the reason each may go unordered."""
    return list(_Checker(plan).creation()[1])


def deletion_violations(plan: Plan) -> list[Violation]:
    """Finalized objects that could outlive their controller, its Pod Identity or its policies on destroy."""
    return list(_Checker(plan).deletion()[0])


def check_order(plan: Plan) -> OrderReport:
    checker = _Checker(plan)
    creation, used, references = checker.creation()
    deletion, finalized = checker.deletion()
    return OrderReport(
        creation=tuple(creation),
        deletion=tuple(deletion),
        references_checked=references,
        finalized_checked=finalized,
        exemptions=tuple(used),
    )


def render(report: OrderReport, *, verbose: bool = False) -> list[str]:
    """The report as lines: a summary, each violation, and (verbose) each exemption applied with its reason."""
    summary = (
        f"Deploy order: {report.references_checked} references checked for creation order, "
        f"{report.finalized_checked} finalized objects for deletion order: "
        f"{len(report.creation)} creation and {len(report.deletion)} deletion violations"
    )
    if report.exemptions and not verbose:
        count = len(report.exemptions)
        one = count == 1
        summary += f" ({count} exempted reference{'' if one else 's'}; --verbose lists {'it' if one else 'them'})"
    lines = [summary]
    lines += [f"  create: {v.message()}" for v in report.creation]
    lines += [f"  delete: {v.message()}" for v in report.deletion]
    if verbose:
        lines += [
            f"  exempt: {u.resource}.{u.path} names {u.target} ({u.target_type}): {u.reason}" for u in report.exemptions
        ]
    return lines


def occurs_as_token(identifier: str, text: str) -> bool:
    """Whether `identifier` occurs in `text` as a whole token (see `TOKEN_CHARACTERS`)."""
    return bool(_token_starts(identifier, text))


# -- the checks -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reference:
    path: str
    value: str
    identifier: str
    targets: tuple[tuple[str, str], ...]
    """(target name, attribute) for each resource the identifier belongs to."""


class _Checker:
    """One plan's dependency graph, identifiers and Kubernetes objects, indexed once for both checks."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.by_name: dict[str, PlannedResource] = {r.name: r for r in plan.resources}
        self.layer_index = {layer: i for i, layer in enumerate(plan.layers)}
        self._reach: dict[str, frozenset[str]] = {}
        self.identifiers = _Identifiers(r for r in plan.resources if _is_aws_target(r))
        self.k8s_objects: dict[tuple[str, str, str], list[str]] = {}
        for r in plan.resources:
            key = _k8s_identity(r)
            if key is not None:
                self.k8s_objects.setdefault(key, []).append(r.name)

    # graph

    def reaches(self, source: PlannedResource, target: PlannedResource) -> bool:
        """Whether `source` waits for `target` on create (and goes before it on destroy): a dependency path, or
        `target` in an earlier layer (created before, destroyed after, the whole of `source`'s layer)."""
        return self._layer(target) < self._layer(source) or target.name in self._closure(source.name)

    def _layer(self, r: PlannedResource) -> int:
        return self.layer_index.get(r.layer, 0)

    def _closure(self, name: str) -> frozenset[str]:
        known = self._reach.get(name)
        if known is not None:
            return known
        seen: set[str] = set()
        stack = [name]
        while stack:
            current = self.by_name.get(stack.pop())
            if current is None:
                continue  # a name outside the plan (another stack's resource): it orders nothing here
            for dep in current.dependencies():
                if dep in seen or dep not in self.by_name:
                    continue
                cached = self._reach.get(dep)
                seen.add(dep)
                if cached is not None:
                    seen |= cached
                else:
                    stack.append(dep)
        result = frozenset(seen)
        self._reach[name] = result
        return result

    # creation

    def creation(self) -> tuple[list[Violation], list[ExemptionUse], int]:
        violations: dict[tuple[str, str, str], Violation] = {}
        used: dict[tuple[str, str, str], ExemptionUse] = {}
        checked = 0
        for r in self.plan.resources:
            if not _is_referrer(r):
                continue
            for ref in self._references(r):
                checked += 1
                for v in self._check_reference(r, ref, used):
                    violations.setdefault((v.resource, v.path, v.target), v)
        return _sorted(violations.values()), sorted(used.values(), key=_use_key), checked

    def _references(self, r: PlannedResource) -> Iterator[_Reference]:
        seen: set[tuple[str, tuple[str, ...]]] = set()
        for ref in (*self._identifier_references(r), *self._k8s_references(r)):
            key = (ref.path, tuple(sorted(name for name, _ in ref.targets)))
            if key not in seen:
                seen.add(key)
                yield ref

    def _identifier_references(self, r: PlannedResource) -> Iterator[_Reference]:
        for path, text in _leaf_strings(r.inputs, ""):
            for identifier, owners in self.identifiers.find(text, exclude=r.name):
                yield _Reference(path, text, identifier, owners)

    def _k8s_references(self, r: PlannedResource) -> Iterator[_Reference]:
        for path, kind, namespace, name in _k8s_names(r):
            scope = "" if kind in CLUSTER_SCOPED_KINDS else namespace
            targets = [t for t in self.k8s_objects.get((kind, scope, name), []) if t != r.name]
            if targets:
                yield _Reference(path, name, name, tuple((t, "metadata.name") for t in targets))

    def _check_reference(
        self, r: PlannedResource, ref: _Reference, used: dict[tuple[str, str, str], ExemptionUse]
    ) -> Iterator[Violation]:
        ordinary: list[tuple[PlannedResource, str]] = []
        for name, attribute in ref.targets:
            target = self.by_name[name]
            exemption = _exemption(r.type, ref.path, target.type, ref.value)
            if exemption is None:
                ordinary.append((target, attribute))
            elif exemption.reverse and not self.reaches(target, r):
                yield self._violation(r, ref, target, attribute, reason=exemption.reason, reverse=True)
            else:
                use = ExemptionUse(r.name, ref.path, name, target.type, exemption.reason)
                used.setdefault((r.name, ref.path, name), use)
        if any(self.reaches(r, target) for target, _ in ordinary):
            return  # one path among the resources the value names is enough
        for target, attribute in ordinary:
            others = tuple(t.name for t, _ in ordinary if t.name != target.name)
            yield self._violation(r, ref, target, attribute, alternatives=others)

    def _violation(
        self,
        r: PlannedResource,
        ref: _Reference,
        target: PlannedResource,
        attribute: str,
        *,
        alternatives: tuple[str, ...] = (),
        reason: str = "",
        reverse: bool = False,
    ) -> Violation:
        return Violation(
            kind="create",
            resource=r.name,
            resource_type=r.type,
            path=ref.path,
            value=ref.value,
            target=target.name,
            target_type=target.type,
            attribute=attribute,
            alternatives=alternatives,
            reason=reason,
            reverse=reverse,
            resource_layer=r.layer,
            target_layer=target.layer,
            attribute_value=ref.identifier,
        )

    # deletion

    def deletion(self) -> tuple[list[Violation], int]:
        violations: list[Violation] = []
        checked = 0
        for r in self.plan.resources:
            if not (r.custom and r.type.startswith("kubernetes:")):
                continue
            controller = FINALIZED_BY.get(_group_kind(r.type))
            if controller is None:
                continue
            candidates = self._controllers(controller)
            if not candidates:
                continue  # installed by someone else: nothing in this plan to order against
            checked += 1
            missing = min(
                ([(t, role) for t, role in needs if not self.reaches(r, t)] for needs in candidates),
                key=lambda m: (len(m), [t.name for t, _ in m]),
            )
            violations += [
                Violation(
                    kind="delete",
                    resource=r.name,
                    resource_type=r.type,
                    path="metadata.finalizers",
                    value=controller.finalizer,
                    target=t.name,
                    target_type=t.type,
                    attribute=role,
                    reason=controller.does,
                    resource_layer=r.layer,
                    target_layer=t.layer,
                )
                for t, role in missing
            ]
        return _sorted(violations), checked

    def _controllers(self, controller: Controller) -> list[list[tuple[PlannedResource, str]]]:
        """For each planned instance of the controller: what an object it finalizes must outlive on destroy."""
        found: list[list[tuple[PlannedResource, str]]] = []
        for r in self.plan.resources:
            if controller.chart and r.type == HELM_RELEASE and _chart_name(r) == controller.chart:
                namespace = _string(r.inputs.get("namespace")) or "default"
                values = r.inputs.get("values")
                account = _string(_get(values, "serviceAccount", "name")) or controller.service_account
                needs = [(r, f"the Helm release of the {controller.chart} chart")]
                needs += self._pod_identity(namespace, account, role_arns=())
            elif controller.addon and r.type == EKS_ADDON and r.inputs.get("addonName") == controller.addon:
                embedded = [_string(_get(a, "roleArn")) for a in _list(r.inputs.get("podIdentityAssociations"))]
                needs = [(r, f"the EKS add-on {controller.addon}")]
                needs += self._pod_identity("kube-system", controller.service_account, role_arns=embedded)
            else:
                continue
            found.append(needs)
        return found

    def _pod_identity(
        self, namespace: str, account: str | None, role_arns: Iterable[str | None]
    ) -> list[tuple[PlannedResource, str]]:
        """The controller's Pod Identity associations and the inline and attached policies of their roles."""
        needs: list[tuple[PlannedResource, str]] = []
        arns = {a for a in role_arns if a}
        for pia in self.plan.of_type(POD_IDENTITY_ASSOCIATION):
            if account and pia.inputs.get("namespace") == namespace and pia.inputs.get("serviceAccount") == account:
                needs.append((pia, f"the Pod Identity association of {namespace}/{account}"))
                if arn := _string(pia.inputs.get("roleArn")):
                    arns.add(arn)
        for role in self.plan.of_type(IAM_ROLE):
            if role.outputs.get("arn") not in arns:
                continue
            names = {v for k in ("name", "id") if (v := _string(role.outputs.get(k)))}
            needs += [
                (policy, f"a policy of the controller's role {role.name}")
                for type_ in ROLE_POLICY_TYPES
                for policy in self.plan.of_type(type_)
                if policy.inputs.get("role") in names
            ]
        return needs


# -- identifiers ----------------------------------------------------------------------------------------------


class _Identifiers:
    """Every planned AWS resource's physical identifiers, and where they occur in a string."""

    def __init__(self, targets: Iterable[PlannedResource]) -> None:
        self.owners: dict[str, list[tuple[str, str]]] = {}
        for r in targets:
            for attribute, value in _physical_identifiers(r):
                owners = self.owners.setdefault(value, [])
                if all(name != r.name for name, _ in owners):
                    owners.append((r.name, attribute))
        self._values = sorted(self.owners, key=len, reverse=True)
        self._found: dict[str, list[tuple[int, int, str]]] = {}

    def find(self, text: str, exclude: str) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
        """(identifier, its owners other than `exclude`) for each identifier in `text` that is not part of a
        longer one also found there (an ARN holds the name it ends with; a log group's ARN holds the cluster
        name inside the group's name: the reference is to the longer one)."""
        spans: list[tuple[int, int, str, tuple[tuple[str, str], ...]]] = []
        for start, end, value in self._occurrences(text):
            owners = tuple(o for o in self.owners[value] if o[0] != exclude)
            if owners:
                spans.append((start, end, value, owners))
        result: dict[str, tuple[tuple[str, str], ...]] = {}
        for start, end, value, owners in spans:
            if not any(s <= start and end <= e and e - s > end - start for s, e, _, _ in spans):
                result.setdefault(value, owners)
        return list(result.items())

    def _occurrences(self, text: str) -> list[tuple[int, int, str]]:
        found = self._found.get(text)
        if found is None:
            found = [
                (start, start + len(value), value)
                for value in self._values
                if len(value) <= len(text) and value in text
                for start in _token_starts(value, text)
            ]
            self._found[text] = found
        return found


def _physical_identifiers(r: PlannedResource) -> Iterator[tuple[str, str]]:
    """(attribute, value) for each of an AWS resource's own identifiers.

    A value that came into the resource from another one's Output (a BucketPolicy's `bucket`, an event target's
    `arn`) is that other resource's identifier, not this one's. EC2 ids are read from the ARN when the outputs
    carry no `id`: an EC2 ARN ends in the resource id (`arn:aws:ec2:<region>:<account>:subnet/subnet-0abc`).
    """
    for key in IDENTIFIER_KEYS:
        value = r.outputs.get(key)
        if isinstance(value, str) and len(value) >= MIN_IDENTIFIER_LENGTH and key not in r.references:
            yield key, value
    arn = r.outputs.get("arn")
    if "id" not in r.outputs and r.type.startswith("aws:ec2/") and isinstance(arn, str) and ":ec2:" in arn:
        resource_id = arn.rsplit("/", 1)[-1]
        if "/" in arn and len(resource_id) >= MIN_IDENTIFIER_LENGTH:
            yield "id", resource_id


def _token_starts(identifier: str, text: str) -> list[int]:
    starts = []
    at = text.find(identifier)
    while at >= 0:
        end = at + len(identifier)
        before = text[at - 1] if at > 0 else ""
        after = text[end] if end < len(text) else ""
        if before not in TOKEN_CHARACTERS and after not in TOKEN_CHARACTERS:
            starts.append(at)
        at = text.find(identifier, at + 1)
    return starts


def _leaf_strings(value: Any, path: str, in_document: bool = False) -> Iterator[tuple[str, str]]:
    """(path, string) for every string value, skipping dict keys, free text and label maps; a string holding a
    JSON document (an IAM policy) is walked inside, its path continuing with `/` (`policy/Statement[0]/Resource`)."""
    if isinstance(value, Mapping):
        separator = "/" if in_document else "."
        for key, item in value.items():
            if key in FREE_TEXT_KEYS or (key in LABEL_KEYS and isinstance(item, Mapping)):
                continue
            yield from _leaf_strings(item, f"{path}{separator}{key}" if path else str(key), in_document)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaf_strings(item, f"{path}[{i}]", in_document)
    elif isinstance(value, str):
        document = _json_document(value)
        if document is None:
            yield path, value
        else:
            yield from _leaf_strings(document, path, in_document=True)


def _json_document(text: str) -> dict[str, Any] | list[Any] | None:
    if not text.startswith(("{", "[")):
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict | list) else None


# -- Kubernetes -----------------------------------------------------------------------------------------------


def _k8s_identity(r: PlannedResource) -> tuple[str, str, str] | None:
    """(kind, namespace or "" when cluster-scoped, name) of a planned Kubernetes object named explicitly."""
    if not _is_k8s_object(r):
        return None
    kind = _group_kind(r.type)[1]
    metadata = r.inputs.get("metadata")
    name = _string(_get(metadata, "name"))
    if name is None:
        return None  # autonamed: nothing can name it with a constant
    namespace = "" if kind in CLUSTER_SCOPED_KINDS else _string(_get(metadata, "namespace")) or "default"
    return kind, namespace, name


def _k8s_names(r: PlannedResource) -> Iterator[tuple[str, str, str, str]]:
    """(path, kind, namespace, name) for each Kubernetes object that `r` names."""
    if r.type == HELM_RELEASE:
        if namespace := _string(r.inputs.get("namespace")):
            yield "namespace", "Namespace", "", namespace
        yield from _class_names(r.inputs.get("values"), "values")
        return
    if not _is_k8s_object(r):
        return
    kind = _group_kind(r.type)[1]
    own = _string(_get(r.inputs.get("metadata"), "namespace"))
    if own and kind not in CLUSTER_SCOPED_KINDS:
        yield "metadata.namespace", "Namespace", "", own
    namespace = own or "default"
    yield from _class_names(r.inputs, "")
    for path, pod in _dicts(r.inputs.get("spec"), "spec"):
        if isinstance(pod.get("containers"), list) or isinstance(pod.get("serviceAccountName"), str):
            for rule in POD_SPEC_REFERENCES:
                yield from _apply_rule(rule, pod, path, namespace)
    for rule in OBJECT_REFERENCES.get(kind, ()):
        yield from _apply_rule(rule, r.inputs, "", namespace)


def _apply_rule(
    rule: _RefRule, root: Mapping[str, Any], path: str, namespace: str
) -> Iterator[tuple[str, str, str, str]]:
    for at, holder in _dicts_at(root, rule.at, path):
        name = _string(holder.get(rule.name_key))
        if name is None:
            continue
        kind = _string(holder.get(rule.kind_key)) if rule.kind_key else None
        where = _string(holder.get(rule.namespace_key)) if rule.namespace_key else None
        yield _join(at, rule.name_key), kind or rule.kind, where or namespace, name


def _class_names(value: Any, path: str) -> Iterator[tuple[str, str, str, str]]:
    for at, holder in _dicts(value, path):
        for key, kind in CLASS_NAME_KEYS.items():
            if name := _string(holder.get(key)):
                yield _join(at, key), kind, "", name


def _dicts(value: Any, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every dict inside `value` (itself included) with its path, label maps left out."""
    if isinstance(value, Mapping):
        yield path, value
        for key, item in value.items():
            if key not in LABEL_KEYS:
                yield from _dicts(item, _join(path, str(key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _dicts(item, f"{path}[{i}]")


def _dicts_at(root: Any, pattern: str, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The dicts at `pattern` below `root` (`a.b[].c`: `[]` walks a list), with their paths."""
    if not pattern:
        if isinstance(root, Mapping):
            yield path, root
        return
    step, _, rest = pattern.partition(".")
    key, is_list = (step[:-2], True) if step.endswith("[]") else (step, False)
    child = _get(root, key)
    if is_list:
        for i, item in enumerate(_list(child)):
            yield from _dicts_at(item, rest, f"{_join(path, key)}[{i}]")
    else:
        yield from _dicts_at(child, rest, _join(path, key))


# -- small helpers --------------------------------------------------------------------------------------------


def _is_referrer(r: PlannedResource) -> bool:
    """Resources the engine creates from inputs: not components, not reads of existing resources, and not
    StackReferences (whose input is a stack's name)."""
    return r.custom and r.type != "pulumi:pulumi:StackReference" and "read" not in r.options


def _is_aws_target(r: PlannedResource) -> bool:
    return r.custom and r.type.startswith("aws:") and "read" not in r.options


def _is_k8s_object(r: PlannedResource) -> bool:
    return r.custom and r.type.startswith("kubernetes:") and r.type != HELM_RELEASE


def _group_kind(type_token: str) -> tuple[str, str]:
    """`kubernetes:apps/v1:Deployment` -> (`apps`, `Deployment`)."""
    parts = type_token.split(":")
    if len(parts) != 3:
        return "", ""
    group = parts[1].rsplit("/", 1)[0] if "/" in parts[1] else parts[1]
    return group, parts[2]


def _chart_name(release: PlannedResource) -> str:
    """A release's chart by name: `oci://public.ecr.aws/karpenter/karpenter` and `eks/karpenter` are `karpenter`."""
    chart = _string(release.inputs.get("chart")) or ""
    return chart.rstrip("/").rsplit("/", 1)[-1]


def _exemption(referrer_type: str, path: str, target_type: str, value: str) -> Exemption | None:
    """The entry of `EXEMPTIONS` for this reference; a prefix covers the path itself and everything below it
    (`policy` covers `policy/Statement[0]/Resource`, not `policyArn`)."""
    for (rtype, prefix, ttype), exemption in EXEMPTIONS.items():
        if (
            rtype == referrer_type
            and ttype == target_type
            and _under(path, prefix)
            and (exemption.value is None or re.fullmatch(exemption.value, value))
        ):
            return exemption
    return None


def _under(path: str, prefix: str) -> bool:
    return path == prefix or (path.startswith(prefix) and path[len(prefix)] in "./[")


def _get(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _snake(attribute: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), attribute)


def _quote(value: str, identifier: str, limit: int = 100) -> str:
    """The value as JSON; a long one (a script, a config file) shortened around the identifier it holds."""
    if len(value) <= limit or not identifier:
        return json.dumps(value, ensure_ascii=False)
    at = value.find(identifier)
    start = max(0, at - 30)
    excerpt = value[start : at + len(identifier) + 30]
    return f"{json.dumps(excerpt, ensure_ascii=False)} (in a {len(value)}-character string)"


def _sorted(violations: Iterable[Violation]) -> list[Violation]:
    return sorted(violations, key=lambda v: (v.kind, v.resource, v.path, v.target))


def _use_key(use: ExemptionUse) -> tuple[str, str, str]:
    return use.resource, use.path, use.target
