"""ML services in the shipped stacks' plans: MLflow, Ray, KServe, vLLM, tenancy and the load balancer controller.

Every Kubernetes object of every plan validates (built-in kinds against the Kubernetes API models, custom
resources against the upstream CRDs); generated secrets never reach a plan; the builders' choices that users rely
on are asserted one by one.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from mlplatform.infra.catalog import versions
from mlplatform.infra.config import ConfigError, validate_config
from mlplatform.mlp.planner import Plan, generated_secrets, plan_stack
from mlplatform.mlp.stackfile import Project, load_stack
from tests.k8s_schema import object_of, validate_plan


def _by_name(plan: Plan, name: str) -> Any:
    found = [r for r in plan.resources if r.name == name]
    assert found, f"{name} not in the plan"
    return found[0]


def _of_type(plan: Plan, type_token: str) -> list[Any]:
    return [r for r in plan.resources if r.type == type_token]


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_kubernetes_object_validates(plans: dict[str, Plan], stack: str) -> None:
    assert validate_plan(plans[stack]) == {}


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_no_generated_secret_appears_in_the_plan(project: Project, stack: str) -> None:
    plan = plan_stack(load_stack(project, stack))
    secrets = generated_secrets()
    # MLflow's admin password and its Flask key, Grafana's admin password, and in dev the MLflow accounts of the
    # registry reader and the research team; each with its bcrypt hash. (RDS makes and rotates the database
    # password: it never passes through Pulumi.)
    assert len(secrets) == (10 if stack == "dev" else 6)
    text = plan.to_json()
    assert [s for s in secrets if s in text] == []
    # The values that carry them are present, redacted.
    secret_versions = _of_type(plan, "aws:secretsmanager/secretVersion:SecretVersion")
    assert {r.inputs["secretString"] for r in secret_versions} == {"[secret]"}
    assert "password" not in _by_name(plan, "mlflow-db").inputs
    assert _by_name(plan, "monitoring-grafana-admin").inputs["stringData"] == "[secret]"


def test_the_secret_check_would_catch_a_leak() -> None:
    """The test above can fail: a generated password that reaches a plain input is found in the plan."""
    import pulumi
    import pulumi_aws as aws
    import pulumi_random as random

    from tests.conftest import plan_component

    def leaky() -> None:
        password = random.RandomPassword("pw", length=20)
        provider = aws.Provider("aws", region="us-east-1")
        aws.sqs.Queue(
            "leak",
            tags={"oops": pulumi.Output.unsecret(password.result)},
            opts=pulumi.ResourceOptions(provider=provider),
        )

    plan = plan_component(leaky)
    secrets = generated_secrets()
    assert [s for s in secrets if s in plan.to_json()] == [secrets[0]]


# --- MLflow -----------------------------------------------------------------------------------------------------


def test_mlflow_database_is_private_encrypted_and_backed_up(plans: dict[str, Plan]) -> None:
    dev, prod = _by_name(plans["dev"], "mlflow-db"), _by_name(plans["prod"], "mlflow-db")
    for db in (dev, prod):
        inputs = db.inputs
        assert (
            inputs["engine"] == "postgres" and inputs["engineVersion"] == versions.database("postgres").engine_version
        )
        assert inputs["publiclyAccessible"] is False and inputs["storageEncrypted"] is True
        assert inputs["kmsKeyId"] == inputs["performanceInsightsKmsKeyId"]  # the lake key
        assert inputs["backupRetentionPeriod"] >= 7
    assert prod.inputs["multiAz"] is True and prod.inputs["deletionProtection"] is True
    assert prod.options.get("protect") is True and prod.inputs["skipFinalSnapshot"] is False
    assert dev.inputs["multiAz"] is False and dev.inputs["instanceClass"] == "db.t4g.micro"
    params = {p["name"]: p["value"] for p in _by_name(plans["prod"], "mlflow-db-params").inputs["parameters"]}
    assert params["rds.force_ssl"] == "1"


def test_mlflow_database_admits_only_the_cluster(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    rules = _of_type(plan, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    db_rules = [r for r in rules if r.name.startswith("mlflow-")]
    assert len(db_rules) == 1
    rule = db_rules[0].inputs
    assert (rule["fromPort"], rule["toPort"], rule["ipProtocol"]) == (5432, 5432, "tcp")
    assert "cidrIpv4" not in rule and rule["referencedSecurityGroupId"].startswith("sg-")
    assert not [
        r for r in _of_type(plan, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule") if "mlflow" in r.name
    ]


def test_mlflow_role_reaches_only_its_prefix_and_secrets(plans: dict[str, Plan]) -> None:
    policy = json.loads(_by_name(plans["prod"], "mlflow-policy").inputs["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert all(r.endswith("/mlflow/*") for r in statements["ReadObjects"]["Resource"])
    assert statements["List0"]["Condition"] == {"StringLike": {"s3:prefix": ["mlflow/*"]}}
    assert len(statements["ReadOwnSecrets"]["Resource"]) == 3  # connection, RDS-managed password, admin
    trust = json.loads(_by_name(plans["prod"], "mlflow-role").inputs["assumeRolePolicy"])
    condition = trust["Statement"][0]["Condition"]["StringEquals"]
    assert condition["aws:RequestTag/kubernetes-namespace"] == "mlflow"
    assert condition["aws:RequestTag/kubernetes-service-account"] == "mlflow"


PROD_CACHE = "444455556666.dkr.ecr.us-east-1.amazonaws.com/mlp-prod"


def test_mlflow_deployment_runs_authenticated_non_root_with_probes(plans: dict[str, Plan]) -> None:
    deployment = object_of(_by_name(plans["prod"], "mlflow-deployment"))
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # prod pulls the pinned image through its image cache (ghcr.io's rule); dev straight from ghcr.io
    pinned = versions.image("mlflow")
    assert container["image"] == f"{PROD_CACHE}/ghcr/{pinned.removeprefix('ghcr.io/')}"
    dev = object_of(_by_name(plans["dev"], "mlflow-deployment"))["spec"]["template"]["spec"]["containers"][0]
    assert dev["image"] == pinned
    args = container["command"]
    assert args[:2] == ["python", "-c"] and args[-2:] == ["--app-name", "basic-auth"]
    assert args[args.index("--artifacts-destination") + 1].startswith("s3://") and "--serve-artifacts" in args
    hosts = args[args.index("--allowed-hosts") + 1].split(",")
    assert "mlflow.mlflow.svc.cluster.local:*" in hosts and "mlflow.ml.internal.example.com" in hosts
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLFLOW_DB_SECRET_ID"].startswith("arn:aws:secretsmanager:")
    assert env["MLFLOW_AUTH_DEFAULT_PERMISSION"] == "NO_PERMISSIONS"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
    assert deployment["spec"]["replicas"] == 2
    pdb = object_of(_by_name(plans["prod"], "mlflow-pdb"))
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "mlflow"}}}


def test_mlflow_ingress_is_an_internal_alb_with_tls_in_prod(plans: dict[str, Plan]) -> None:
    ingress = object_of(_by_name(plans["prod"], "mlflow-ingress"))
    annotations = ingress["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internal"
    assert annotations["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTPS": 443}]'
    values = _by_name(plans["prod"], "lb-controller-release").inputs["values"]
    assert values["defaultLoadBalancerScheme"] == "internal" and values["enableWafv2"] is False
    assert values["defaultTags"]["cost-center"] == "ml-platform"
    assert not [r for r in plans["dev"].resources if r.name.startswith("lb-controller")]


# --- Ray --------------------------------------------------------------------------------------------------------


def test_ray_clusters_bind_gpu_groups_to_their_pools(plans: dict[str, Plan]) -> None:
    cluster = object_of(_by_name(plans["prod"], "ray-training"))
    spec = cluster["spec"]
    assert spec["authOptions"] == {"mode": "token"} and spec["enableInTreeAutoscaling"] is True
    head = spec["headGroupSpec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in head["containers"][0]["resources"]["limits"]
    assert head["nodeSelector"] == {"mlplatform.io/gpu-pool": "general"}  # placement: general (too big for system)
    assert spec["headGroupSpec"]["template"]["metadata"]["annotations"] == {"karpenter.sh/do-not-disrupt": "true"}
    dev_head = object_of(_by_name(plans["dev"], "ray-research"))["spec"]["headGroupSpec"]["template"]["spec"]
    assert dev_head["nodeSelector"] == {"node.mlplatform.io/role": "system"}
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert groups["cpu"]["minReplicas"] == 0
    gpu = groups["h100"]
    pod = gpu["template"]["spec"]
    assert gpu["minReplicas"] == 0 and gpu["maxReplicas"] == 2
    assert pod["nodeSelector"] == {"mlplatform.io/gpu-pool": "training"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert gpu["rayStartParams"]["num-gpus"] == "8"
    assert pod["serviceAccountName"] == "workload"  # a team cluster's workers: the team's account (test_ray_tenancy)
    assert cluster["spec"]["rayVersion"] == versions.image_version("ray")


def test_kuberay_operator_is_pinned_and_namespaced(plans: dict[str, Plan]) -> None:
    release = _by_name(plans["dev"], "ray-kuberay-operator").inputs
    assert release["version"] == versions.chart("kuberay-operator").version
    assert release["values"]["singleNamespaceInstall"] is True and release["values"]["watchNamespace"] == [
        "ray",
        "team-research",
    ]


# --- KServe and vLLM --------------------------------------------------------------------------------------------


def test_kserve_runs_in_standard_mode_with_canary(plans: dict[str, Plan]) -> None:
    values = _by_name(plans["prod"], "serving-kserve").inputs["values"]
    assert values["kserve"]["controller"]["deploymentMode"] == "Standard"
    isvc = object_of(_by_name(plans["prod"], "serving-isvc-churn-model"))
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    predictor = isvc["spec"]["predictor"]
    models = _by_name(plans["prod"], "lake-models").outputs["bucket"]
    # a folder URI: KServe's storage initializer lists the bare prefix, so `churn/v3` would also pull `churn/v30/`
    assert predictor["model"]["storageUri"] == f"s3://{models}/churn/v3/"
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 6)
    (canary,) = isvc["spec"]["canary"]
    assert canary["trafficPercent"] == 10 and canary["predictor"]["model"]["storageUri"] == f"s3://{models}/churn/v4/"
    assert canary["predictor"]["name"] == "canary" and "maxReplicas" not in canary["predictor"]
    policy = json.loads(_by_name(plans["prod"], "serving-models-policy").inputs["policy"])
    reads = next(s for s in policy["Statement"] if s["Sid"] == "ReadObjects")["Resource"]
    assert sorted(r.rsplit(":::", 1)[1].split("/", 1)[1] for r in reads) == ["churn/v3/*", "churn/v4/*"]
    # KServe calls HeadBucket first: s3:ListBucket with no prefix (see S3Grant.head_bucket), besides the prefixes
    lists = {s["Sid"]: s.get("Condition") for s in policy["Statement"] if s["Action"] == "s3:ListBucket"}
    assert lists == {
        "HeadBucket0": {"Null": {"s3:prefix": "true"}},
        "List0": {"StringLike": {"s3:prefix": ["churn/v3/*", "churn/v4/*"]}},
    }


def test_vllm_server_maps_config_to_flags_and_gpus(plans: dict[str, Plan]) -> None:
    deployment = object_of(_by_name(plans["prod"], "serving-vllm-assistant-deployment"))
    pod = deployment["spec"]["template"]["spec"]
    vllm = pod["containers"][0]
    args = vllm["args"]
    assert args[0] == "/models/assistant"
    flag = {args[i]: args[i + 1] for i in range(1, len(args) - 1) if args[i].startswith("--")}
    assert flag["--tensor-parallel-size"] == "4" and flag["--max-model-len"] == "32768"
    assert flag["--gpu-memory-utilization"] == "0.92" and flag["--served-model-name"] == "assistant"
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert vllm["readinessProbe"]["httpGet"]["path"] == "/health"
    assert vllm["startupProbe"]["failureThreshold"] * vllm["startupProbe"]["periodSeconds"] >= 1800
    assert {"name": "dshm", "mountPath": "/dev/shm"} in vllm["volumeMounts"]
    (fetch,) = pod["initContainers"]
    assert fetch["command"][:3] == ["aws", "s3", "sync"] and fetch["command"][-2].endswith(
        "/llm/llama-3.1-70b-instruct/"
    )
    assert pod["nodeSelector"] == {"mlplatform.io/gpu-pool": "inference"}
    assert _by_name(plans["prod"], "serving-vllm-assistant-deployment").options["ignoreChanges"] == ["spec.replicas"]


def test_hub_token_is_read_in_the_pod_not_by_pulumi(plans: dict[str, Plan]) -> None:
    deployment = object_of(_by_name(plans["prod"], "serving-vllm-embedder-deployment"))
    pod = deployment["spec"]["template"]["spec"]
    (fetch,) = pod["initContainers"]
    env = {e["name"]: e["value"] for e in fetch["env"]}
    assert env["HUB_TOKEN_SECRET_ID"] == "ml-platform/prod/hf-token"  # a name, never a value
    vllm_env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert vllm_env["HF_TOKEN_PATH"] == "/var/run/secrets/huggingface/token"
    token_volume = next(v for v in pod["volumes"] if v["name"] == "hub-token")
    assert token_volume["emptyDir"]["medium"] == "Memory"
    policy = json.loads(_by_name(plans["prod"], "serving-vllm-embedder-policy").inputs["policy"])
    (statement,) = [s for s in policy["Statement"] if s["Sid"] == "ReadOwnSecrets"]
    assert statement["Resource"] == [
        "arn:aws:secretsmanager:us-east-1:444455556666:secret:ml-platform/prod/hf-token-??????"
    ]


def test_keda_scales_on_waiting_requests(plans: dict[str, Plan]) -> None:
    scaler = object_of(_by_name(plans["prod"], "serving-vllm-assistant-scaler"))
    spec = scaler["spec"]
    assert spec["scaleTargetRef"]["name"] == "vllm-assistant"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 3)
    (trigger,) = spec["triggers"]
    assert trigger["metadata"]["query"].startswith("sum(vllm:num_requests_waiting{")
    assert trigger["metadata"]["threshold"] == "8"
    dev = object_of(_by_name(plans["dev"], "serving-vllm-assistant-scaler"))["spec"]
    assert dev["minReplicaCount"] == 0
    assert [t["name"] for t in dev["triggers"]] == ["waiting-requests", "running-requests"]


SURGE = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
REPLACE = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
NEVER_BELOW_CURRENT = {"failureThreshold": 4, "replicas": 2, "behavior": "currentReplicasIfHigher"}


@pytest.mark.parametrize(
    ("stack", "server", "strategy", "floor", "fallback"),
    [
        # dev: replace in place (no extra GPU node), parked at 0; KEDA's fallback is the static floor.
        ("dev", "assistant", REPLACE, 0, {"failureThreshold": 4, "replicas": 1, "behavior": "static"}),
        # staging and prod: a new replica is ready before an old one stops; two replicas so one serves while
        # Karpenter moves the other; KEDA's fallback never below the current count.
        ("staging", "assistant", SURGE, 2, NEVER_BELOW_CURRENT),
        ("prod", "assistant", SURGE, 2, NEVER_BELOW_CURRENT),
        ("prod", "embedder", SURGE, 2, NEVER_BELOW_CURRENT),
    ],
)
def test_vllm_keeps_serving_through_rollouts_and_consolidation_outside_dev(
    plans: dict[str, Plan], stack: str, server: str, strategy: Any, floor: int, fallback: Any
) -> None:
    plan = plans[stack]
    deployment = object_of(_by_name(plan, f"serving-vllm-{server}-deployment"))["spec"]
    assert deployment["strategy"] == strategy and deployment["replicas"] == floor
    pdb = object_of(_by_name(plan, f"serving-vllm-{server}-pdb"))["spec"]
    assert pdb == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": server}},
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    scaler = object_of(_by_name(plan, f"serving-vllm-{server}-scaler"))["spec"]
    assert scaler["fallback"] == fallback and scaler["minReplicaCount"] == floor
    # No do-not-disrupt annotation: it would keep Karpenter from replacing the node for drift or expiry as well.
    template = object_of(_by_name(plan, f"serving-vllm-{server}-deployment"))["spec"]["template"]["metadata"]
    assert "karpenter.sh/do-not-disrupt" not in template.get("annotations", {})


def _config_errors(config: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        validate_config(config, "stacks/Pulumi.test.yaml")
    return [(i.key_path(), i.message) for i in info.value.issues]


def test_one_always_on_replica_is_refused_outside_dev(stack_config: Any) -> None:
    config = stack_config("staging")
    config["ml-platform:vllm"]["models"]["assistant"]["min_replicas"] = 1
    assert _config_errors(config) == [
        (
            "vllm.models.assistant.min_replicas",
            "must be 0 (parked) or at least 2 in staging: with one replica, Karpenter consolidating, replacing or "
            "draining its node stops the model until a new replica has loaded it",
        )
    ]
    config["ml-platform:vllm"]["models"]["assistant"]["min_replicas"] = 0  # parked: nothing to keep serving
    validate_config(config, "stacks/Pulumi.test.yaml")
    dev = stack_config("dev")
    dev["ml-platform:vllm"]["models"]["assistant"]["min_replicas"] = 1  # dev may run one replica
    validate_config(dev, "stacks/Pulumi.test.yaml")


def test_the_pool_must_hold_a_surged_rollout_outside_dev(stack_config: Any) -> None:
    config = stack_config("prod")
    config["ml-platform:gpu_pools"]["inference"]["max_gpus"] = 14
    assert _config_errors(config) == [
        (
            "gpu_pools.inference.max_gpus",
            "14 GPUs cannot hold a vLLM rollout, which starts one more replica of each server on the pool before an "
            "old one stops: (vllm.models.assistant.min_replicas 2 + 1) x 4 GPUs + "
            "(vllm.models.embedder.min_replicas 2 + 1) x 1 GPU = 15 GPUs; raise max_gpus or lower min_replicas",
        )
    ]
    config["ml-platform:gpu_pools"]["inference"]["max_gpus"] = 15  # exactly enough
    validate_config(config, "stacks/Pulumi.test.yaml")
    dev = stack_config("dev")  # dev replaces in place: no surge to hold
    dev["ml-platform:vllm"]["models"]["assistant"].update(min_replicas=4, max_replicas=4)
    validate_config(dev, "stacks/Pulumi.test.yaml")


# --- tenancy ----------------------------------------------------------------------------------------------------


def test_tenant_namespace_is_fenced(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    namespace = object_of(_by_name(plan, "tenants-research-namespace"))
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted" and labels["team"] == "research"
    quota = object_of(_by_name(plan, "tenants-research-quota"))["spec"]["hard"]
    # 16 GPUs of its own plus its `training` Ray cluster at max_replicas (tests/test_ray_tenancy.py)
    assert quota["requests.nvidia.com/gpu"] == "32" and quota["services.loadbalancers"] == "0"
    policies = {
        r.name.removeprefix("tenants-research-")
        for r in plan.resources
        if r.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy" and r.name.startswith("tenants-research-")
    }
    assert policies == {
        "default-deny",
        "allow-same-namespace",
        "allow-dns",
        "allow-platform-services",
        "allow-aws-apis",  # the Pod Identity agent only
        "allow-s3",  # the region's S3 prefix list, through the gateway endpoint (tests/test_tenant_egress.py)
        "allow-monitoring",
        "allow-interface-endpoints",  # prod's STS/ECR/Logs endpoints on 443 (tests/test_tenant_egress.py)
    }  # no `allow-internet`: prod's research team has no internet_egress
    egress = object_of(_by_name(plan, "tenants-research-allow-platform-services"))["spec"]["egress"]
    reachable = {
        rule["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]: [
            p["port"] for p in rule["ports"]
        ]
        for rule in egress
    }
    # the models' Gateway: Envoy listens on 10080 for the Gateway's port 80 (tests/test_model_routing.py); no Ray:
    # a team reaches its own clusters, in its namespace
    assert reachable == {
        "mlflow": [5000],
        "serving": [8000, 8080],
        "envoy-gateway-system": [10080],
        "feast": [6566],  # the feature server
    }
    binding = object_of(_by_name(plan, "tenants-research-members"))
    assert binding["roleRef"]["name"] == "mlplatform:tenant" and binding["subjects"][0]["name"] == "ml-research"
    policy = json.loads(_by_name(plan, "tenants-research-policy").inputs["policy"])
    writes = next(s for s in policy["Statement"] if s["Sid"] == "WriteObjects")["Resource"]
    # Its lake prefix in every zone, its Ray Train checkpoints in the artifacts zone (it hosts a Ray cluster), and
    # the feature store's offline files (prod's `feature_store.producers`).
    suffixes = ("/teams/research/*", "/checkpoints/research/*", "/feast/ranking/sources/*")
    assert writes and all(r.endswith(suffixes) for r in writes)
    assert sum(r.endswith("/checkpoints/research/*") for r in writes) == 1
    assert sum(r.endswith("/feast/ranking/sources/*") for r in writes) == 1


# --- awaits: how long `pulumi up` waits, derived from config --------------------------------------------------------


def test_vllm_rollout_waits_for_a_node_the_weights_and_the_startup_budget(
    project: Project, plans: dict[str, Plan], stack_config: Any
) -> None:
    deployment = _by_name(plans["prod"], "serving-vllm-assistant-deployment")
    (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    # 30 minutes of startup probe (every 10 s) by default...
    assert container["startupProbe"]["periodSeconds"] == 10 and container["startupProbe"]["failureThreshold"] == 180
    # ...and `pulumi up` waits for a GPU node (15), the image and weights (15) and that budget, not the
    # Kubernetes provider's 10-minute default.
    assert deployment.options["customTimeouts"] == {"create": "60m", "update": "60m"}
    config = stack_config("prod")
    config["ml-platform:vllm"]["models"]["assistant"]["startup_minutes"] = 45
    plan = plan_stack(dataclasses.replace(load_stack(project, "prod"), config=config))
    changed = _by_name(plan, "serving-vllm-assistant-deployment")
    (container,) = changed.inputs["spec"]["template"]["spec"]["containers"]
    assert container["startupProbe"]["failureThreshold"] == 270
    assert changed.options["customTimeouts"] == {"create": "75m", "update": "75m"}


def test_database_timeouts_follow_multi_az_storage_and_the_final_snapshot(plans: dict[str, Plan]) -> None:
    # prod: Multi-AZ, 100 GiB, a final snapshot on delete; dev: single-AZ, no snapshot.
    assert _by_name(plans["prod"], "mlflow-db").options["customTimeouts"] == {
        "create": "70m",
        "update": "90m",
        "delete": "70m",
    }
    assert _by_name(plans["dev"], "mlflow-db").options["customTimeouts"] == {
        "create": "50m",
        "update": "90m",
        "delete": "60m",
    }
