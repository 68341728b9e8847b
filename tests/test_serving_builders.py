"""Builders of the serving, tenancy and load-balancer-controller domains: the vLLM flag check against the pinned
release, scaling and canary rules KServe and KEDA enforce, and the controller's tightened IAM policy."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlplatform.infra.catalog import versions
from mlplatform.infra.ingress import documents as lbc
from mlplatform.infra.serving import documents
from mlplatform.infra.serving.documents import InferenceServiceSpec, VllmServer
from tests.k8s_schema import validate_builtin, validate_custom_resource

SERVER = VllmServer(
    name="assistant",
    model="Qwen/Qwen2.5-1.5B-Instruct",
    source="hub",
    served_model_name="assistant",
    pool="shared",
    gpus=1,
    max_model_len=8192,
    gpu_memory_utilization=0.85,
    min_replicas=0,
    max_replicas=2,
    max_waiting_requests=8,
    cpu="3",
    memory="12Gi",
)


def test_the_flag_catalog_is_the_pinned_release() -> None:
    version, flags = documents.vllm_flag_catalog()
    assert version == versions.image_version("vllm")
    assert len(flags) > 300 and "--tensor-parallel-size" in flags


def test_a_flag_the_release_does_not_have_is_refused() -> None:
    # Removed upstream: 0.33 has --enable-log-requests / --no-enable-log-requests instead.
    with pytest.raises(documents.UnknownVllmFlagError, match=r"vLLM 0\.33\.0 has no flag\(s\) --disable-log-requests"):
        documents.check_vllm_args(["model", "--port", "8000", "--disable-log-requests"])
    documents.check_vllm_args(["model", "--enable-log-requests", "--max-model-len=4096"])


@given(
    gpus=st.integers(min_value=1, max_value=8),
    length=st.integers(min_value=256, max_value=131072),
    utilization=st.floats(min_value=0.5, max_value=0.98),
    source=st.sampled_from(["hub", "lake"]),
)
def test_every_rendered_flag_exists_in_the_release(gpus: int, length: int, utilization: float, source: str) -> None:
    server = replace(SERVER, gpus=gpus, max_model_len=length, gpu_memory_utilization=utilization, source=source)
    args = documents.vllm_args(server)
    _, known = documents.vllm_flag_catalog()
    assert {a for a in args if a.startswith("--")} <= known
    assert args[args.index("--tensor-parallel-size") + 1] == str(gpus)
    assert float(args[args.index("--gpu-memory-utilization") + 1]) == pytest.approx(utilization, rel=1e-5)


def test_vllm_deployment_validates_and_hub_tokens_stay_out_of_the_spec() -> None:
    server = replace(SERVER, hub_token_secret="team/hf-token", models_bucket="bucket")
    manifest = documents.vllm_deployment(
        server, image=versions.image("vllm"), aws_cli_image=versions.image("aws-cli"), labels={}, pool_label="p"
    )
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", **manifest}
    assert validate_builtin(obj) == []
    text = json.dumps(manifest)
    assert "team/hf-token" in text and "hf_" not in text.replace("hf-token", "")
    fetch = manifest["spec"]["template"]["spec"]["initContainers"][0]
    assert fetch["securityContext"]["readOnlyRootFilesystem"] is True
    assert "> /var/run/secrets/huggingface/token" in fetch["command"][2] and "umask 077" in fetch["command"][2]


def test_scaled_object_keeps_a_parked_server_alive_while_it_serves() -> None:
    scaled = documents.vllm_scaled_object(SERVER, prometheus_url="http://prom:9090", labels={})
    assert validate_custom_resource(scaled) == []
    waiting, running = scaled["spec"]["triggers"]
    assert waiting["metadata"]["threshold"] == "8" and waiting["metadata"]["activationThreshold"] == "0"
    assert running["metadata"]["query"].startswith("sum(vllm:num_requests_running{")
    assert 'model_name="assistant"' in running["metadata"]["query"]
    always_on = documents.vllm_scaled_object(replace(SERVER, min_replicas=1), prometheus_url="http://p", labels={})
    assert [t["name"] for t in always_on["spec"]["triggers"]] == ["waiting-requests"]


def _deployment(server: VllmServer) -> dict[str, object]:
    manifest = documents.vllm_deployment(
        server, image=versions.image("vllm"), aws_cli_image=versions.image("aws-cli"), labels={}, pool_label="p"
    )
    return {"apiVersion": "apps/v1", "kind": "Deployment", **manifest}


def test_a_server_that_keeps_serving_surges_its_rollouts() -> None:
    keeps = _deployment(replace(SERVER, min_replicas=2, max_replicas=3, keeps_serving=True))
    assert validate_builtin(keeps) == []
    spec = keeps["spec"]
    assert isinstance(spec, dict)
    # A new replica is ready before an old one stops (one more GPU node's worth of pool capacity)...
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    # ...and the rollout is not reported failed while the new replica gets a node, the weights and the model loaded.
    assert spec["progressDeadlineSeconds"] == (15 + 15 + 30) * 60
    cheap = _deployment(SERVER)["spec"]
    assert isinstance(cheap, dict)
    assert cheap["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    assert cheap["progressDeadlineSeconds"] == 3600


@pytest.mark.parametrize("keeps_serving", [True, False])
def test_the_disruption_budget_lets_one_ready_replica_go_at_a_time(keeps_serving: bool) -> None:
    pdb = documents.vllm_disruption_budget(replace(SERVER, keeps_serving=keeps_serving), {"team": "ml"})
    assert validate_builtin({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", **pdb}) == []
    assert pdb == {
        "metadata": {"name": "vllm-assistant", "namespace": "serving", "labels": {"team": "ml"}},
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "assistant"}},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def test_keda_fallback_never_scales_a_server_that_keeps_serving_below_its_current_count() -> None:
    keeps = replace(SERVER, min_replicas=2, max_replicas=4, keeps_serving=True)
    scaled = documents.vllm_scaled_object(keeps, prometheus_url="http://p", labels={})
    assert validate_custom_resource(scaled) == []  # against the KEDA v2.20.2 CRD
    assert scaled["spec"]["fallback"] == {"failureThreshold": 4, "replicas": 2, "behavior": "currentReplicasIfHigher"}
    parked = documents.vllm_scaled_object(SERVER, prometheus_url="http://p", labels={})
    assert parked["spec"]["fallback"] == {"failureThreshold": 4, "replicas": 1, "behavior": "static"}
    # The CRD's enum is what the gate checks: a behaviour KEDA 2.20 does not know is refused.
    scaled["spec"]["fallback"]["behavior"] = "neverLower"
    assert validate_custom_resource(scaled) != []


def _isvc(**overrides: object) -> InferenceServiceSpec:
    base: dict[str, object] = {
        "name": "churn",
        "model_format": "sklearn",
        "runtime": None,
        "storage_path": "churn/v3",
        "min_replicas": 1,
        "max_replicas": 3,
        "cpu": "1",
        "memory": "2Gi",
    }
    base.update(overrides)
    return InferenceServiceSpec(**base)  # type: ignore[arg-type]


def test_inference_service_gpu_and_runtime() -> None:
    isvc = documents.inference_service(
        _isvc(model_format=None, runtime="vllm", gpus=1, gpu_pool="inference"),
        bucket="models",
        labels={},
        pool_label="pool",
    )
    assert validate_custom_resource(isvc) == []
    predictor = isvc["spec"]["predictor"]
    assert predictor["model"]["modelFormat"] == {"name": "vllm"} and predictor["model"]["runtime"] == "vllm"
    assert predictor["nodeSelector"] == {"pool": "inference"}
    assert predictor["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "canary" not in isvc["spec"]
    assert predictor["model"]["storageUri"] == "s3://models/churn/v3/"
    # a path given with slashes is the same folder
    again = documents.inference_service(_isvc(storage_path="/churn/v3/"), bucket="models", labels={}, pool_label="p")
    assert again["spec"]["predictor"]["model"]["storageUri"] == "s3://models/churn/v3/"


def test_vllm_serving_runtime_validates() -> None:
    runtime = documents.vllm_serving_runtime(image=versions.image("vllm"), labels={})
    assert validate_custom_resource(runtime) == []
    (container,) = runtime["spec"]["containers"]
    assert container["name"] == "kserve-container" and container["image"] == versions.image("vllm")


def test_load_balancer_controller_policy_is_the_release_policy_tightened() -> None:
    upstream = lbc.upstream_policy()
    source = lbc.policy_source()
    assert source["tag"] == "v" + versions.chart("aws-load-balancer-controller").version
    tightened = json.loads(lbc.controller_policy(partition="aws", region="eu-west-1", account_id="1", vpc_id="vpc-9"))
    kept = {a for s in tightened["Statement"] for a in s["Action"]}
    original = {
        a for s in upstream["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    # Only the turned-off features' actions are dropped; nothing is added.
    assert kept <= original
    assert sorted(original - kept) == sorted(a for a in original if a.startswith(lbc.DROPPED_PREFIXES))
    for statement in tightened["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if resources == ["*"]:
            listing = all(a.split(":")[1].startswith(("Describe", "List", "Get")) for a in statement["Action"])
            assert "Condition" in statement or listing, statement
        assert not any(":*:*:" in r for r in resources)
    sg = next(
        s
        for s in tightened["Statement"]
        if s["Action"] == ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"]
    )
    assert sg["Condition"] == {"StringEquals": {"ec2:Vpc": "arn:aws:ec2:eu-west-1:1:vpc/vpc-9"}}
    values = lbc.controller_values(
        cluster_name="c", region="eu-west-1", vpc_id="vpc-9", replicas=2, node_selector={}, default_tags={"team": "t"}
    )
    assert values["enableWaf"] is values["enableWafv2"] is values["enableShield"] is False
    assert values["podDisruptionBudget"] == {"maxUnavailable": 1}
