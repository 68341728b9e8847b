"""Ray per team, in the shipped stacks' plans: each team's clusters run in the team's namespace under the team's
role, workers with no Kubernetes token or rights, the head's token in the autoscaler container alone; the `ray`
namespace (platform clusters) reads only `ray/` in the artifacts zone and admits no team; the KubeRay operator
watches exactly the namespaces that host clusters and may not make Ingresses or NetworkPolicies in a team's.

KubeRay's additions to the pods (the autoscaler container, the workers' `wait-gcs-ready` init container) are
modelled as the operator makes them at the pinned v1.7.0 (ray-operator/controllers/ray/common/pod.go
DefaultHeadPodTemplate, BuildAutoscalerContainer, mergeAutoscalerOverrides, DefaultWorkerPodTemplate), so that
Pod Security `restricted` and the team's quota are checked on the pods that will really run.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from mlplatform.infra.config import ConfigError, validate_config
from mlplatform.infra.mlops.documents import (
    KUBERAY_INIT_CPU,
    KUBERAY_INIT_MEMORY,
    KUBERAY_OPERATOR_USER,
    RAY_HEAD_SELECTOR,
)
from mlplatform.infra.tenancy.documents import TENANT_LABEL
from mlplatform.mlp import smoke
from mlplatform.mlp.iam_eval import Context, Policy, Request, action_matches, condition_holds, evaluate
from mlplatform.mlp.planner import Plan, plan_stack
from mlplatform.mlp.stackfile import Project, load_stack
from tests.admission import BINDING as ADMISSION_BINDING
from tests.admission import POLICY as ADMISSION_POLICY
from tests.admission import Admission
from tests.admission import Request as AdmissionRequest
from tests.iam_harness import Lake, Workload
from tests.k8s_schema import object_of
from tests.network_policy import Destination, Pod, connection_allowed, plan_namespace_labels, plan_policies

STACKS = ("dev", "staging", "prod")
CLUSTERS = {"dev": "research", "staging": "batch", "prod": "training"}
"""Each shipped stack's Ray cluster: all three belong to the team `research`."""
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
CLUSTER_NETWORK_POLICY = "kubernetes:networking.k8s.aws/v1alpha1:ClusterNetworkPolicy"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
API_SERVER = "10.100.0.1"


def _cluster(plan: Plan, name: str) -> dict[str, Any]:
    return object_of(plan.get(f"ray-{name}"))


def _templates(cluster: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "head", cluster["spec"]["headGroupSpec"]["template"]
    for group in cluster["spec"]["workerGroupSpecs"]:
        yield group["groupName"], group["template"]


# --- where each cluster runs, as whom ---------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_team_clusters_run_in_the_team_namespace_as_the_team(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    cluster = _cluster(plan, CLUSTERS[stack])
    assert cluster["metadata"]["namespace"] == "team-research"
    assert cluster["metadata"]["labels"]["team"] == "research"  # the team's cost labels, not the platform's
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]
    assert head["serviceAccountName"] == "ray-head" and head["automountServiceAccountToken"] is False
    workers = [t["spec"] for name, t in _templates(cluster) if name != "head"]
    assert len(workers) == 2  # the CPU group and one GPU group in every shipped stack
    for worker in workers:
        assert worker["serviceAccountName"] == "workload" and worker["automountServiceAccountToken"] is False
        assert not [v for v in worker["volumes"] if "projected" in v or "secret" in v]
    # the head's service account exists in the team namespace, without a token of its own
    account = object_of(plan.get("ray-team-research-head-service-account"))
    assert account["metadata"] == {**account["metadata"], "name": "ray-head", "namespace": "team-research"}
    assert account["automountServiceAccountToken"] is False
    # no platform cluster in the shipped stacks: the `ray` namespace hosts none and has no service accounts
    assert not [r for r in plan.of_type("kubernetes:core/v1:ServiceAccount") if r.name.startswith("ray-service")]


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_autoscaler_container_gets_a_kubernetes_token(plans: dict[str, Plan], stack: str) -> None:
    cluster = _cluster(plans[stack], CLUSTERS[stack])
    for name, template in _templates(cluster):
        for container in template["spec"]["containers"]:
            mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
            assert not [m for m in mounts if m.startswith("/var/run/secrets")], f"{name}: {mounts}"
    head_volumes = {v["name"]: v for v in cluster["spec"]["headGroupSpec"]["template"]["spec"]["volumes"]}
    (mount,) = cluster["spec"]["autoscalerOptions"]["volumeMounts"]
    assert mount == {"name": "autoscaler-api-token", "mountPath": TOKEN_PATH, "readOnly": True}
    sources = head_volumes["autoscaler-api-token"]["projected"]["sources"]
    # 3607 s like the automount: the API server's extended expiry applies (Ray reads the token once)
    assert sources[0] == {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}
    assert sources[1]["configMap"] == {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    assert sources[2]["downwardAPI"]["items"][0]["path"] == "namespace"


# --- the pods KubeRay will create: Pod Security `restricted` and the team's quota ---------------------------------


def _kuberay_pods(cluster: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The pod specs KubeRay v1.7.0 makes from the RayCluster (common/pod.go): the head gets the autoscaler
    container (KubeRay's defaults, then `autoscalerOptions` resources, securityContext and volumeMounts merged in,
    the ray-logs emptyDir shared), each worker the `wait-gcs-ready` init container (the Ray container's
    securityContext, requests and limits 200m / 256Mi); every Ray container a `/dev/shm` emptyDir."""
    pods: dict[str, dict[str, Any]] = {}
    options = cluster["spec"]["autoscalerOptions"]
    for name, template in _templates(cluster):
        spec = copy.deepcopy(template["spec"])
        ray = spec["containers"][0]
        if not any(m["mountPath"] == "/dev/shm" for m in ray["volumeMounts"]):
            spec["volumes"].append({"name": "shared-mem", "emptyDir": {"medium": "Memory"}})
        if name == "head":
            autoscaler = {
                "name": "autoscaler",
                "image": ray["image"],
                "resources": {
                    "requests": {"cpu": "500m", "memory": "512Mi"},
                    "limits": {"cpu": "500m", "memory": "512Mi"},
                },
            }
            autoscaler["resources"] = options["resources"]
            autoscaler["securityContext"] = options["securityContext"]
            autoscaler["volumeMounts"] = [*options["volumeMounts"], {"name": "ray-logs", "mountPath": "/tmp/ray"}]
            spec["containers"].append(autoscaler)
        else:
            init = {
                "name": "wait-gcs-ready",
                "image": ray["image"],
                "securityContext": copy.deepcopy(ray["securityContext"]),
                "volumeMounts": copy.deepcopy(ray["volumeMounts"]),
                "resources": {
                    "requests": {"cpu": KUBERAY_INIT_CPU, "memory": KUBERAY_INIT_MEMORY},
                    "limits": {"cpu": KUBERAY_INIT_CPU, "memory": KUBERAY_INIT_MEMORY},
                },
            }
            spec["initContainers"] = [*spec.get("initContainers", []), init]
        pods[name] = spec
    return pods


RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim"}
RESTRICTED_VOLUMES |= {"projected", "secret"}


def _restricted_violations(spec: Mapping[str, Any]) -> list[str]:
    """Pod Security Standards `restricted` (Kubernetes 1.35, https://kubernetes.io/docs/concepts/security/
    pod-security-standards/, read 2026-12-04): the baseline checks that matter here and every restricted one."""
    found: list[str] = []
    pod_sc = spec.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            found.append(flag)
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            found.append(f"volume {volume['name']}: {sorted(kinds)}")
    if pod_sc.get("runAsUser") == 0:
        found.append("pod runAsUser 0")
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        name, sc = container["name"], container.get("securityContext", {})
        if sc.get("privileged"):
            found.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            found.append(f"{name}: capabilities not dropped")
        if set(sc.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: capabilities added")
        if not (sc.get("runAsNonRoot") is True or (pod_sc.get("runAsNonRoot") is True and "runAsNonRoot" not in sc)):
            found.append(f"{name}: runAsNonRoot")
        if sc.get("runAsUser") == 0:
            found.append(f"{name}: runAsUser 0")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: seccompProfile {seccomp}")
        if any(p.get("hostPort") for p in container.get("ports", [])):
            found.append(f"{name}: hostPort")
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_kuberay_pods_pass_restricted_and_state_their_requests(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    namespace = object_of(plan.get("tenants-research-namespace"))["metadata"]["labels"]
    assert namespace["pod-security.kubernetes.io/enforce"] == "restricted"
    pods = _kuberay_pods(_cluster(plan, CLUSTERS[stack]))
    assert {name: _restricted_violations(spec) for name, spec in pods.items()} == {name: [] for name in pods}
    # The quota counts requests.cpu and requests.memory: every container, KubeRay's included, states both.
    for name, spec in pods.items():
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), f"{name}/{container['name']}"
    autoscaler = pods["head"]["containers"][-1]
    assert autoscaler["resources"]["requests"] == {"cpu": "200m", "memory": "512Mi"}
    assert [c["name"] for c in pods["cpu"]["initContainers"]] == ["wait-gcs-ready"]


def test_the_restricted_check_would_catch_a_missing_security_context(plans: dict[str, Plan]) -> None:
    cluster = copy.deepcopy(_cluster(plans["dev"], "research"))
    del cluster["spec"]["autoscalerOptions"]["securityContext"]["allowPrivilegeEscalation"]
    cluster["spec"]["headGroupSpec"]["template"]["spec"]["volumes"].append({"name": "h", "hostPath": {"path": "/"}})
    assert _restricted_violations(_kuberay_pods(cluster)["head"]) == [
        "volume h: ['hostPath']",
        "autoscaler: allowPrivilegeEscalation",
    ]


# --- AWS identities ---------------------------------------------------------------------------------------------


def _trust_admits(document: str, cluster: str, namespace: str, service_account: str) -> bool:
    """Whether a role's trust policy lets the EKS Pod Identity agent assume it (sts:AssumeRole and sts:TagSession)
    for a pod of this cluster, namespace and service account: the tags it sets on the session are the request's
    `aws:RequestTag/...` keys (EKS user guide, pod-id-abac, read 2026-12-04)."""
    trust = Policy.parse("trust", document, resource_policy=True)
    ctx = Context(
        {
            "aws:RequestTag/eks-cluster-name": cluster,
            "aws:RequestTag/kubernetes-namespace": namespace,
            "aws:RequestTag/kubernetes-service-account": service_account,
        }
    )

    def decided(action: str) -> bool:
        allowed = False
        for st in trust.statements:
            assert st.principal is not None
            service = "pods.eks.amazonaws.com" in st.principal.by_kind.get("Service", ())
            applies = service and any(action_matches(a, action) for a in st.actions) != st.not_action
            if applies and all(condition_holds(c, ctx) for c in st.conditions):
                if st.effect == "Deny":
                    return False
                allowed = True
        return allowed

    return decided("sts:AssumeRole") and decided("sts:TagSession")


@pytest.mark.parametrize("stack", STACKS)
def test_the_team_role_carries_workload_and_ray_head_and_no_one_else(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    cluster_name = f"mlp-{stack}"
    associations = {
        (r.inputs["namespace"], r.inputs["serviceAccount"]): r.inputs["roleArn"] for r in plan.of_type(ASSOCIATION)
    }
    role = plan.get("tenants-research-role")
    assert associations[("team-research", "workload")] == associations[("team-research", "ray-head")]
    assert associations[("team-research", "workload")] == role.outputs["arn"]
    # a team without Ray clusters gets no association for a head
    assert [k for k in associations if k[1] == "ray-head"] == [("team-research", "ray-head")]
    trust = role.inputs["assumeRolePolicy"]
    assert _trust_admits(trust, cluster_name, "team-research", "workload")
    assert _trust_admits(trust, cluster_name, "team-research", "ray-head")
    for namespace, account, cluster in [
        ("team-research", "ray", cluster_name),
        ("team-research", "default", cluster_name),
        ("team-research", "research", cluster_name),  # the name KubeRay gives an autoscaler account it makes
        ("ray", "ray-head", cluster_name),
        ("team-applied", "workload", cluster_name),
        ("team-research", "workload", "another-cluster"),
    ]:
        assert not _trust_admits(trust, cluster, namespace, account), (namespace, account, cluster)


def _s3(lake: Lake, workload: Workload, action: str, zone: str, key: str, *, bucket_policy: bool = True) -> bool:
    bucket = lake.buckets[zone]
    arn = f"arn:aws:s3:::{bucket}/{key}"
    resource_policy = lake.bucket_policies.get(bucket) if bucket_policy else None
    return evaluate(
        Request(action=action, resource=arn), workload.principal, workload.policies, resource_policy
    ).allowed


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_team_cluster_reads_and_writes_its_prefix_only(plans: dict[str, Plan], stack: str) -> None:
    lake = Lake.of(plans[stack])
    head = Workload.of(plans[stack], "team-research", "ray-head")
    workers = Workload.of(plans[stack], "team-research", "workload")
    assert head.principal.role_arn == workers.principal.role_arn
    for zone in ("curated", "artifacts"):
        # own prefix: the role allows it (the lake's perimeter is asserted in its own tests)
        assert _s3(lake, head, "s3:GetObject", zone, "teams/research/data.parquet", bucket_policy=False)
        assert _s3(lake, head, "s3:PutObject", zone, "teams/research/out.parquet", bucket_policy=False)
        # another team's prefix, the platform clusters' prefix, the bucket's root: denied, bucket policy included
        for key in ("teams/applied/data.parquet", "ray/checkpoint", "data.parquet", "teams/research-x/a"):
            for action in ("s3:GetObject", "s3:PutObject"):
                assert not _s3(lake, head, action, zone, key), (zone, key, action)


# --- a platform cluster (no team): in `ray`, under a role that reads only ray/ in artifacts ------------------------


@pytest.fixture(scope="module")
def platform_plan(project: Project, stack_config: Any) -> Plan:
    config = stack_config("dev")
    config["ml-platform:ray"]["clusters"]["shared"] = {
        "head": {"cpu": "500m", "memory": "1Gi", "placement": "general"},
        "cpu_workers": {"min_replicas": 0, "max_replicas": 1, "cpu": "1", "memory": "2Gi"},
    }
    return plan_stack(dataclasses.replace(load_stack(project, "dev"), config=config))


@pytest.fixture(scope="module")
def stack_config(project: Project) -> Any:  # module scope for `platform_plan` (conftest's is per test)
    def load(stack: str) -> dict[str, Any]:
        return copy.deepcopy(load_stack(project, stack).config)

    return load


def test_platform_cluster_runs_in_ray_and_reads_only_ray_prefix(platform_plan: Plan) -> None:
    plan = platform_plan
    cluster = _cluster(plan, "shared")
    assert cluster["metadata"]["namespace"] == "ray"
    assert "team" not in cluster["metadata"]["labels"] or cluster["metadata"]["labels"]["team"] != "research"
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]
    (worker,) = [t["spec"] for name, t in _templates(cluster) if name != "head"]
    assert (head["serviceAccountName"], worker["serviceAccountName"]) == ("ray-head", "ray")
    accounts = {
        (a["metadata"]["namespace"], a["metadata"]["name"]): a["automountServiceAccountToken"]
        for a in (object_of(r) for r in plan.of_type("kubernetes:core/v1:ServiceAccount"))
        if a["metadata"]["name"] in ("ray", "ray-head")
    }
    assert accounts == {("ray", "ray"): False, ("ray", "ray-head"): False, ("team-research", "ray-head"): False}
    # the RayCloud role: associated with both accounts of `ray`, trusted by them alone
    role = plan.get("ray-role")
    trust = role.inputs["assumeRolePolicy"]
    assert _trust_admits(trust, "mlp-dev", "ray", "ray") and _trust_admits(trust, "mlp-dev", "ray", "ray-head")
    assert not _trust_admits(trust, "mlp-dev", "ray", "default")
    assert not _trust_admits(trust, "mlp-dev", "team-research", "ray")
    lake = Lake.of(plan)
    for account in ("ray", "ray-head"):
        platform = Workload.of(plan, "ray", account)
        assert platform.principal.role_arn == role.outputs["arn"]
        assert _s3(lake, platform, "s3:GetObject", "artifacts", "ray/checkpoints/1", bucket_policy=False)
        assert _s3(lake, platform, "s3:PutObject", "artifacts", "ray/checkpoints/1", bucket_policy=False)
        for zone, key in [
            ("artifacts", "teams/research/model.pt"),
            ("artifacts", "mlflow/1/model.pkl"),
            ("curated", "ray/data.parquet"),
            ("curated", "teams/research/data.parquet"),
            ("features", "teams/research/f.parquet"),
            ("models", "churn/v3/model.pkl"),
        ]:
            assert not _s3(lake, platform, "s3:GetObject", zone, key), (account, zone, key)
    # the operator watches `ray` and the team namespace that hosts the dev cluster
    values = plan.get("ray-kuberay-operator").inputs["values"]
    assert values["watchNamespace"] == ["ray", "team-research"]


# --- the KubeRay operator ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_kuberay_watches_ray_and_the_hosting_team_namespaces(plans: dict[str, Plan], stack: str) -> None:
    values = plans[stack].get("ray-kuberay-operator").inputs["values"]
    # `applied` hosts no cluster in staging and prod: the operator gets no Role there
    assert values["watchNamespace"] == ["ray", "team-research"]
    assert values["singleNamespaceInstall"] is True and values["crNamespacedRbacEnable"] is True


def test_kuberay_may_not_make_ingresses_or_network_policies_in_team_namespaces(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    policy = object_of(plan.get("ray-team-objects-policy"))
    binding = object_of(plan.get("ray-team-objects-policy-binding"))
    rules = {(g, r) for rule in policy["spec"]["matchConstraints"]["resourceRules"] for g in rule["apiGroups"]
             for r in rule["resources"]}  # fmt: skip
    assert rules == {
        ("networking.k8s.io", "ingresses"),
        ("networking.k8s.io", "networkpolicies"),
        ("gateway.networking.k8s.io", "gateways"),
        ("gateway.networking.k8s.io", "httproutes"),
    }
    (validation,) = policy["spec"]["validations"]
    assert (
        validation["expression"]
        == "request.userInfo.username != 'system:serviceaccount:kuberay-system:kuberay-operator'"
    )
    assert KUBERAY_OPERATOR_USER == "system:serviceaccount:kuberay-system:kuberay-operator"
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["matchResources"]["namespaceSelector"] == {
        "matchExpressions": [{"key": TENANT_LABEL, "operator": "Exists"}]
    }
    # in place before the operator starts acting in team namespaces
    operator = plan.get("ray-kuberay-operator")
    assert "ray-team-objects-policy-binding" in operator.options["dependsOn"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_operator_is_refused_ingresses_and_policies_in_team_namespaces(plans: dict[str, Plan], stack: str) -> None:
    """Asked as the API server would be (tests/admission.py evaluates the policies' CEL)."""
    plan = plans[stack]
    admission = Admission(
        [object_of(r) for r in plan.of_type(ADMISSION_POLICY)], [object_of(r) for r in plan.of_type(ADMISSION_BINDING)]
    )

    def review(namespace: str, resource: str, group: str, user: str, operation: str = "CREATE") -> bool:
        labels = {**_namespace_labels(plan, namespace), "kubernetes.io/metadata.name": namespace}
        obj: dict[str, Any] = {"metadata": {"name": "research", "namespace": namespace}}
        if resource == "services":  # the head's Service, as KubeRay makes it
            obj["spec"] = {"type": "ClusterIP", "ports": [{"name": "dashboard", "port": 8265}]}
        request = AdmissionRequest(operation, resource, obj, namespace, labels, group=group, user=user)
        return admission.review(request).allowed

    kinds = [
        ("ingresses", "networking.k8s.io"),
        ("networkpolicies", "networking.k8s.io"),
        ("gateways", "gateway.networking.k8s.io"),
        ("httproutes", "gateway.networking.k8s.io"),
    ]
    for resource, group in kinds:
        assert not review("team-research", resource, group, KUBERAY_OPERATOR_USER)
        assert not review("team-research", resource, group, KUBERAY_OPERATOR_USER, "UPDATE")
        # the platform (Pulumi) still writes the team's NetworkPolicies; the operator works freely in `ray`
        assert review("team-research", resource, group, "kubernetes-admin")
        assert review("ray", resource, group, KUBERAY_OPERATOR_USER)
    # what a RayCluster needs from the operator stays allowed: its head Service, pods, the autoscaler's Role
    assert review("team-research", "services", "", KUBERAY_OPERATOR_USER)
    assert review("team-research", "pods", "", KUBERAY_OPERATOR_USER)
    assert review("team-research", "roles", "rbac.authorization.k8s.io", KUBERAY_OPERATOR_USER)


def test_no_team_cluster_no_team_guard(platform_plan: Plan, project: Project, stack_config: Any) -> None:
    assert platform_plan.get("ray-team-objects-policy").type.endswith("ValidatingAdmissionPolicy")
    config = stack_config("dev")
    config["ml-platform:ray"]["clusters"]["research"].pop("team")
    config["ml-platform:ray"]["clusters"]["research"]["head"]["placement"] = "general"
    # nor mlp-train-rayjob, which any team may submit (KubeRay then watches every team namespace)
    config["ml-platform:pipelines"]["templates"].pop("ray_job")
    plan = plan_stack(dataclasses.replace(load_stack(project, "dev"), config=config))
    assert not [r for r in plan.resources if r.name.startswith("ray-team-")]
    assert plan.get("ray-kuberay-operator").inputs["values"]["watchNamespace"] == ["ray"]
    assert [r.name for r in plan.of_type(ASSOCIATION) if r.inputs["serviceAccount"] == "ray-head"] == [
        "ray-pod-identity-ray-head"
    ]


# --- config: a team cluster must name a team and fit its quota ---------------------------------------------------


def _config_errors(config: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        validate_config(config, "stacks/Pulumi.test.yaml")
    return [(i.key_path(), i.message) for i in info.value.issues]


def test_a_team_cluster_names_a_configured_team(stack_config: Any) -> None:
    config = stack_config("prod")
    config["ml-platform:ray"]["clusters"]["training"]["team"] = "vision"
    assert _config_errors(config) == [
        ("ray.clusters.training.team", "unknown team 'vision'; tenants: research, applied"),
    ]


def test_a_team_cluster_must_fit_the_team_quota_at_max_replicas(stack_config: Any) -> None:
    config = stack_config("dev")
    # dev's research cluster at max_replicas: head 1 + 0.2 (autoscaler) + 4 x 2 + 2 x 3 = 15.2 CPU;
    # 2 + 0.5 + 4 x 8 + 2 x 12 = 58.5 GiB; 2 x 1 = 2 GPUs
    config["ml-platform:tenants"]["research"]["quota"].update(gpus=1, cpu="15", memory="58Gi")
    detail = (
        "research: head 1 CPU / 2Gi + its autoscaler 200m / 512Mi + 4 x cpu worker (2 CPU / 8Gi) + "
        "2 x gpu worker (3 CPU / 12Gi / 1 GPU)"
    )
    tail = "raise the quota or lower the workers' max_replicas"
    assert _config_errors(config) == [
        (
            "tenants.research.quota.cpu",
            f"team research's Ray cluster(s) research request up to 15.2 CPU at max_replicas ({detail}), more "
            f"than the quota's 15 CPU: {tail}",
        ),
        (
            "tenants.research.quota.memory",
            f"team research's Ray cluster(s) research request up to 58.5 GiB at max_replicas ({detail}), more "
            f"than the quota's 58 GiB: {tail}",
        ),
        (
            "tenants.research.quota.gpus",
            f"team research's Ray cluster(s) research request up to 2 GPUs at max_replicas ({detail}), more "
            f"than the quota's 1 GPUs: {tail}",
        ),
    ]
    config["ml-platform:tenants"]["research"]["quota"].update(gpus=2, cpu="15200m", memory="59904Mi")  # exactly
    validate_config(config, "stacks/Pulumi.test.yaml")


def test_the_init_container_counts_when_a_worker_asks_for_less(stack_config: Any) -> None:
    """A pod's quota charge is the larger of its containers' sum and its largest init container: a worker smaller
    than KubeRay's `wait-gcs-ready` (200m / 256Mi) is charged that."""
    config = stack_config("dev")
    config["ml-platform:ray"]["clusters"]["research"]["cpu_workers"].update(cpu="100m", memory="128Mi")
    config["ml-platform:tenants"]["research"]["quota"].update(cpu="8")  # 1.2 + 4 x 0.2 + 2 x 3 = 8.0 CPU
    validate_config(config, "stacks/Pulumi.test.yaml")
    config["ml-platform:tenants"]["research"]["quota"].update(cpu="7900m")
    ((path, message),) = _config_errors(config)
    assert path == "tenants.research.quota.cpu" and "request up to 8 CPU at max_replicas" in message


def test_a_platform_cluster_needs_the_artifacts_zone(stack_config: Any) -> None:
    config = stack_config("dev")
    config["ml-platform:ray"]["clusters"]["research"].pop("team")
    config["ml-platform:ray"]["clusters"]["research"]["head"]["placement"] = "general"
    config["ml-platform:data_lake"]["zones"].pop("artifacts")
    errors = _config_errors(config)
    assert (
        "ray.clusters.research",
        "a platform cluster (no `team`) writes under ray/ in the lake's `artifacts` zone; add the zone to "
        "data_lake.zones or give the cluster a team",
    ) in errors


# --- who reaches the clusters -----------------------------------------------------------------------------------


_policies = plan_policies
_namespace_labels = plan_namespace_labels


def _pod(plan: Plan, namespace: str, labels: Mapping[str, str] | None = None) -> Pod:
    return Pod(namespace, dict(labels or {}), _namespace_labels(plan, namespace))


def test_reachability_of_ray_clusters(plans: dict[str, Plan], platform_plan: Plan) -> None:
    cases: list[tuple[str, Pod, Destination, bool]] = []
    for plan in (plans["prod"], platform_plan):
        team_pod = _pod(plan, "team-research", {"app": "notebook"})
        head = _pod(plan, "team-research", {**RAY_HEAD_SELECTOR, "mlplatform.io/ray-cluster": "c"})
        worker = _pod(plan, "team-research", {"ray.io/node-type": "worker", "mlplatform.io/ray-cluster": "c"})
        platform_head = _pod(plan, "ray", {**RAY_HEAD_SELECTOR, "mlplatform.io/ray-cluster": "shared"})
        platform_worker = _pod(plan, "ray", {"ray.io/node-type": "worker", "mlplatform.io/ray-cluster": "shared"})
        operator = _pod(plan, "kuberay-system", {"app.kubernetes.io/name": "kuberay-operator"})
        prometheus = _pod(plan, "monitoring", {"app.kubernetes.io/name": "prometheus"})
        cases += [
            # a team's own pods reach its cluster (client, dashboard, GCS), and the cluster's pods each other
            ("team -> own head 10001", team_pod, Destination(10001, pod=head), True),
            ("team -> own head 8265", team_pod, Destination(8265, pod=head), True),
            ("worker -> own head 6379", worker, Destination(6379, pod=head), True),
            ("head -> own worker 10002", head, Destination(10002, pod=worker), True),
            # no team reaches the platform clusters
            ("team -> ray head 10001", team_pod, Destination(10001, pod=platform_head), False),
            ("team -> ray head 8265", team_pod, Destination(8265, pod=platform_head), False),
            ("team -> ray worker 8080", team_pod, Destination(8080, pod=platform_worker), False),
            ("ray worker -> team head 10001", platform_worker, Destination(10001, pod=head), False),
            # the operator reaches heads' dashboards, nothing else
            ("operator -> team head 8265", operator, Destination(8265, pod=head), True),
            ("operator -> ray head 8265", operator, Destination(8265, pod=platform_head), True),
            ("operator -> team head 10001", operator, Destination(10001, pod=head), False),
            ("operator -> team worker 8265", operator, Destination(8265, pod=worker), False),
            # Prometheus scrapes the metrics port (a team's namespace admits it on every port)
            ("prometheus -> ray worker 8080", prometheus, Destination(8080, pod=platform_worker), True),
            ("prometheus -> ray head 8265", prometheus, Destination(8265, pod=platform_head), False),
            ("prometheus -> team worker 8080", prometheus, Destination(8080, pod=worker), True),
            # only heads reach the API server (the autoscaler), on its Service address
            ("team head -> API server", head, Destination(443, address=API_SERVER), True),
            ("ray head -> API server", platform_head, Destination(443, address=API_SERVER), True),
            ("team worker -> API server", worker, Destination(443, address=API_SERVER), False),
            ("ray worker -> API server", platform_worker, Destination(443, address=API_SERVER), False),
            ("team pod -> API server", team_pod, Destination(443, address=API_SERVER), False),
            # and no Ray pod reaches the instance metadata service
            ("team head -> IMDS", head, Destination(80, address="169.254.169.254"), False),
            ("ray head -> IMDS", platform_head, Destination(80, address="169.254.169.254"), False),
        ]
        if "team-applied" in {object_of(r)["metadata"]["name"] for r in plan.of_type("kubernetes:core/v1:Namespace")}:
            other = _pod(plan, "team-applied", {"app": "notebook"})
            cases.append(("other team -> team head 8265", other, Destination(8265, pod=head), False))
            cases.append(("other team -> team head 10001", other, Destination(10001, pod=head), False))
        network, cluster = _policies(plan)
        got = {label: connection_allowed(network, cluster, src, dest) for label, src, dest, _ in cases}
        assert got == {label: want for label, _, _, want in cases}
        cases = []


# --- `mlp smoke`: each cluster in its own namespace ---------------------------------------------------------------


class _Secrets:
    def __init__(self) -> None:
        self.read: list[tuple[str, str]] = []

    def read_namespaced_secret(self, name: str, namespace: str) -> Any:
        import base64
        from types import SimpleNamespace

        self.read.append((namespace, name))
        return SimpleNamespace(data={"auth_token": base64.b64encode(b"the-token").decode()})


def test_smoke_reaches_each_cluster_in_its_namespace(stack_config: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib

    config = stack_config("dev")
    config["ml-platform:ray"]["clusters"]["shared"] = {
        "head": {"cpu": "500m", "memory": "1Gi", "placement": "general"},
        "cpu_workers": {"min_replicas": 0, "max_replicas": 1, "cpu": "1", "memory": "2Gi"},
    }
    cfg = validate_config(config, "stacks/Pulumi.test.yaml")
    core = _Secrets()
    forwarded: list[tuple[str, str, int]] = []
    checked: list[tuple[str, str | None, str]] = []

    def port_forward(namespace: str, service: str, port: int, *_: Any) -> Any:
        forwarded.append((namespace, service, port))
        return contextlib.nullcontext(f"http://127.0.0.1:1/{namespace}")

    def check_ray(url: str, token: str | None, cluster: str, timeout: float = 600) -> smoke.CheckResult:
        checked.append((url, token, cluster))
        return smoke.CheckResult("ray", cluster, True, "ok")

    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.setattr(smoke, "port_forward", port_forward)
    monkeypatch.setattr(smoke, "kubernetes_clients", lambda *_: (core, None))
    monkeypatch.setattr(smoke, "check_ray", check_ray)
    results = smoke.run_smoke(cfg, smoke.SmokeOptions(checks=["ray"]), lambda _: None)
    assert [r.ok for r in results] == [True, True]
    assert sorted(core.read) == [("ray", "shared"), ("team-research", "research")]
    assert sorted(forwarded) == [("ray", "shared-head-svc", 8265), ("team-research", "research-head-svc", 8265)]
    assert sorted(checked) == [
        ("http://127.0.0.1:1/ray", "the-token", "shared"),
        ("http://127.0.0.1:1/team-research", "the-token", "research"),
    ]


def test_smoke_names_the_namespace_when_the_token_is_missing() -> None:
    class Missing:
        def read_namespaced_secret(self, name: str, namespace: str) -> Any:
            raise RuntimeError("Not Found")

    with pytest.raises(smoke.SmokeError) as info:
        smoke.ray_token(Missing(), "research", "team-research")
    assert str(info.value).startswith("could not read Secret team-research/research: ")
