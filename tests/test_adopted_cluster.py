"""The platform on an existing, Terraform-managed EKS cluster (`cluster.adopt`): config, reading the cluster from a
real Terraform state, and plans that attach what the platform needs and change nothing of the cluster.

The state fixture (`tests/data/terraform/eks-foundation/terraform.tfstate`) was written by a real `terraform apply`
of `main.tf` beside it (Terraform's built-in provider only); `test_fixture_state_is_what_terraform_writes` re-runs
it when `terraform` is on PATH, so the fixture cannot drift from its configuration.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplatform.infra.cluster.terraform_state import cluster_from_outputs
from mlplatform.infra.config import ClusterOutputNames, ConfigError, validate_config
from mlplatform.infra.terraform_state import TerraformStateError, parse_state
from mlplatform.mlp.adoption import check_adoption
from mlplatform.mlp.ordering import check_order
from mlplatform.mlp.planner import Plan, ProgramError, plan_stack
from mlplatform.mlp.schema_gate import check_plan
from mlplatform.mlp.stackfile import load_project, load_stack
from tests.conftest import ROOT

FOUNDATION = ROOT / "tests" / "data" / "terraform" / "eks-foundation"
STATE = FOUNDATION / "terraform.tfstate"
EXAMPLE = ROOT / "examples" / "terraform-cluster"
NAMES: dict[str, str | None] = dict(ClusterOutputNames().model_dump())
SOURCE = "terraform state foundation/terraform.tfstate"
PRIVATE = ["subnet-0a11b22c33d44e55f", "subnet-0b22c33d44e55f66a", "subnet-0c33d44e55f66a77b"]
CLUSTER_SG, NODE_SG = "sg-0b2c3d4e5f6071829", "sg-0c3d4e5f607182930"

# What must never be in the plan of an adopted cluster: the cluster, its nodes, its network.
NEVER_ADOPTED = {
    "aws:eks/cluster:Cluster",
    "aws:eks/nodeGroup:NodeGroup",
    "aws:ec2/launchTemplate:LaunchTemplate",
    "aws:ec2/vpc:Vpc",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/natGateway:NatGateway",
    "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/routeTable:RouteTable",
    "aws:ec2/vpcEndpoint:VpcEndpoint",
    "aws:ec2/securityGroupRule:SecurityGroupRule",
}


def _outputs() -> dict[str, Any]:
    return parse_state(STATE.read_text(), str(STATE))


def _example_config() -> dict[str, Any]:
    return load_stack(load_project(EXAMPLE), "staging").config


def _errors(config: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        validate_config(config, "stacks/Pulumi.staging.yaml")
    return [(i.key_path(), i.message) for i in info.value.issues]


def _cluster(config: dict[str, Any]) -> dict[str, Any]:
    cluster: dict[str, Any] = config["ml-platform:cluster"]
    return cluster


# --- config ---------------------------------------------------------------------------------------------------


def test_the_example_config_is_valid_and_adopts_from_the_state() -> None:
    cfg = validate_config(_example_config(), "stacks/Pulumi.staging.yaml")
    assert cfg.adopts_cluster and cfg.cluster.adopt is not None
    assert cfg.cluster.adopt.terraform_state is not None
    assert cfg.cluster.adopt.terraform_state.path == "foundation/terraform.tfstate"
    assert cfg.cluster_name == "acme-ml"


EXPLICIT = {
    "cluster_name": "acme-ml",
    "endpoint": "https://9F2C4B7E1A3D5F60718293A4B5C6D7E8.gr7.us-east-1.eks.amazonaws.com",
    "certificate_authority_data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==",
    "cluster_security_group_id": CLUSTER_SG,
    "node_security_group_id": NODE_SG,
}


def test_explicit_values_are_a_source_and_name_the_cluster() -> None:
    config = _example_config()
    cluster = _cluster(config)
    cluster.pop("name")
    cluster["adopt"] = {**EXPLICIT}
    cfg = validate_config(config, "stacks/Pulumi.staging.yaml")
    assert cfg.cluster_name == "acme-ml"


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (
            lambda a: a.update(EXPLICIT),
            "cluster.adopt",
            "give either explicit values (cluster_name, endpoint, certificate_authority_data, "
            "cluster_security_group_id, node_security_group_id) or terraform_state, not both",
        ),
        (
            lambda a: a.pop("terraform_state"),
            "cluster.adopt",
            "give the cluster's cluster_name, endpoint, certificate_authority_data, cluster_security_group_id and "
            "node_security_group_id, or a terraform_state to read them from",
        ),
        (
            lambda a: (a.pop("terraform_state"), a.update({k: v for k, v in EXPLICIT.items() if k != "endpoint"})),
            "cluster.adopt.endpoint",
            "is required with explicit values (or read the cluster from a terraform_state)",
        ),
        (
            lambda a: a.update(terraform_state={"remote": {"organization": "acme", "workspaces": {"name": "eks"}}}),
            "cluster.adopt.terraform_state.remote.workspaces",
            "unknown key `workspaces`; allowed: hostname, organization, workspace",
        ),
        (
            lambda a: a["terraform_state"].update(remote={"organization": "acme", "workspace": "eks"}),
            "cluster.adopt.terraform_state",
            "give exactly one of path, s3 or remote",
        ),
        (
            lambda a: a["terraform_state"].update(
                s3={"bucket": "acme-tf", "key": "eks.tfstate", "region": "us-east-1"}
            ),
            "cluster.adopt.terraform_state",
            "give exactly one of path, s3 or remote",
        ),
        (
            lambda a: a.update(authentication_mode="CONFIG_MAP"),
            "cluster.adopt.authentication_mode",
            "CONFIG_MAP has no access entries, and the platform grants its roles access with them: switch the "
            "cluster to API_AND_CONFIG_MAP (terraform-aws-eks input `authentication_mode`; the aws-auth ConfigMap "
            "keeps working) and declare it here",
        ),
    ],
)
def test_bad_adopt_configs_are_named(change: Any, path: str, message: str) -> None:
    config = _example_config()
    change(_cluster(config)["adopt"])
    assert (path, message) in _errors(config)


def test_what_the_owner_decides_cannot_be_configured() -> None:
    config = copy.deepcopy(_example_config())
    cluster = _cluster(config)
    cluster["system_node_group"] = {"min_size": 3}
    cluster["addon_versions"] = {"vpc-cni": "v1.22.4-eksbuild.3", "eks-pod-identity-agent": "v1.3.10-eksbuild.3"}
    config["ml-platform:gpu_pools"]["inference"]["provisioner"] = "node_group"
    errors = dict(_errors(config))
    assert errors["cluster.system_node_group"].startswith("does not apply to an adopted cluster: its node groups")
    assert "eks-pod-identity-agent" in errors["cluster.addon_versions.vpc-cni"]
    assert "cluster.addon_versions.eks-pod-identity-agent" not in errors
    assert errors["gpu_pools.inference.provisioner"].startswith("node_group creates a managed node group")


def test_an_adopted_cluster_needs_an_adopted_network_and_node_roles_for_the_image_cache() -> None:
    config = _example_config()
    del config["ml-platform:network"]
    _cluster(config)["image_cache"] = {"enabled": True}
    errors = dict(_errors(config))
    assert errors["cluster.adopt"].startswith("needs network.adopt")
    assert errors["cluster.adopt.node_role_names"].startswith("cluster.image_cache is on: name the IAM roles")


def test_prod_rules_hold_for_the_declared_facts_of_an_adopted_cluster() -> None:
    """The endpoint and deletion protection describe the adopted cluster: prod's rules still apply to them."""
    config = _example_config()
    config["ml-platform:environment"] = "prod"
    config["ml-platform:tags"]["environment"] = "prod"
    _cluster(config).update(endpoint={"public": True, "public_cidrs": ["203.0.113.0/24"]}, deletion_protection=False)
    errors = dict(_errors(config))
    assert errors["cluster.endpoint.public"].startswith("must be false in prod")
    assert errors["cluster.deletion_protection"] == "must be true in prod"


# --- reading the cluster from a state -------------------------------------------------------------------------


def test_the_cluster_is_read_from_terraform_aws_eks_output_names() -> None:
    facts = cluster_from_outputs(_outputs(), NAMES, SOURCE, expected_version="1.35", expected_name="acme-ml")
    assert facts.cluster_name == "acme-ml"
    assert facts.endpoint.startswith("https://") and facts.endpoint.endswith(".eks.amazonaws.com")
    assert (facts.cluster_security_group_id, facts.node_security_group_id) == (CLUSTER_SG, NODE_SG)
    assert facts.version == "1.35"
    assert facts.oidc_provider_arn is not None and ":oidc-provider/oidc.eks.us-east-1" in facts.oidc_provider_arn


def test_other_output_names_are_mapped_in_config() -> None:
    outputs = _outputs()
    outputs["eks_node_sg"] = outputs.pop("node_security_group_id")
    facts = cluster_from_outputs(
        outputs, {**NAMES, "node_security_group_id": "eks_node_sg"}, SOURCE, expected_version="1.35"
    )
    assert facts.node_security_group_id == NODE_SG


def test_a_missing_output_names_the_state_the_output_and_what_to_do() -> None:
    outputs = _outputs()
    del outputs["node_security_group_id"]
    with pytest.raises(TerraformStateError) as info:
        cluster_from_outputs(outputs, NAMES, SOURCE, expected_version="1.35")
    message = str(info.value)
    assert message.startswith(
        "terraform state foundation/terraform.tfstate: output 'node_security_group_id' (for node_security_group_id) "
        "is not in the state; outputs: azs, cluster_arn,"
    )
    assert message.endswith(
        'Export it from the root module (`output "node_security_group_id" { value = '
        "module.<name>.node_security_group_id }`, then `terraform apply`), or name the output that holds it in "
        "cluster.adopt.terraform_state.outputs.node_security_group_id"
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda o: o.update(cluster_version="1.33"),
            "the cluster runs Kubernetes 1.33 (output 'cluster_version') but cluster.version is '1.35': set "
            "cluster.version: '1.33'",
        ),
        (
            lambda o: o.update(cluster_name="other"),
            "the cluster is named 'other' (output 'cluster_name') but cluster.name",
        ),
        (
            lambda o: o.update(node_security_group_id=None),
            "output 'node_security_group_id' (for node_security_group_id) is null",
        ),
        (lambda o: o.update(cluster_security_group_id="default"), "must be a security group id such as sg-0123abcd"),
        (lambda o: o.update(cluster_certificate_authority_data="bm90IGEgY2VydA=="), "must be the base64 of a PEM"),
        (lambda o: o.update(cluster_endpoint="http://insecure"), "must be the API server's https:// endpoint"),
    ],
)
def test_outputs_of_the_wrong_shape_are_named(mutate: Any, message: str) -> None:
    outputs = _outputs()
    mutate(outputs)
    with pytest.raises(TerraformStateError, match=None) as info:
        cluster_from_outputs(outputs, NAMES, SOURCE, expected_version="1.35", expected_name="acme-ml")
    assert message in str(info.value)


def test_a_null_oidc_provider_is_fine() -> None:
    """terraform-aws-eks leaves oidc_provider_arn null without enable_irsa; the platform uses Pod Identity."""
    outputs = _outputs()
    outputs["oidc_provider_arn"] = None
    assert cluster_from_outputs(outputs, NAMES, SOURCE, expected_version="1.35").oidc_provider_arn is None


# --- the fixture is what Terraform writes ---------------------------------------------------------------------


def _comparable(state: dict[str, Any]) -> dict[str, Any]:
    """A state without what changes on every apply: serial, lineage, the Terraform version, terraform_data's
    random ids."""
    state = copy.deepcopy(state)
    for key in ("serial", "lineage", "terraform_version"):
        state.pop(key, None)
    for resource in state.get("resources", []):
        for instance in resource.get("instances", []):
            instance.get("attributes", {}).pop("id", None)
    return state


@pytest.mark.skipif(
    shutil.which("terraform") is None,
    reason="the terraform CLI is not on PATH (neither Debian nor PyPI packages it; HashiCorp's releases do): the "
    "committed state is then used as is",
)
def test_fixture_state_is_what_terraform_writes(tmp_path: Path) -> None:
    shutil.copy(FOUNDATION / "main.tf", tmp_path)
    env = {"TF_IN_AUTOMATION": "1", "TF_CLI_CONFIG_FILE": "/dev/null", "PATH": "/usr/bin:/bin:/usr/local/bin"}
    for command in (["terraform", "init", "-input=false"], ["terraform", "apply", "-auto-approve", "-input=false"]):
        subprocess.run(command, cwd=tmp_path, env=env, check=True, capture_output=True, timeout=120)
    written = json.loads((tmp_path / "terraform.tfstate").read_text())
    assert _comparable(written) == _comparable(json.loads(STATE.read_text()))


def test_the_example_carries_the_fixture_foundation() -> None:
    for name in ("main.tf", "terraform.tfstate"):
        assert (EXAMPLE / "foundation" / name).read_bytes() == (FOUNDATION / name).read_bytes(), name


# --- plans ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_plan() -> Plan:
    return plan_stack(load_stack(load_project(EXAMPLE), "staging"))


def _aws_types(plan: Plan) -> dict[str, int]:
    return {t: n for t, n in plan.by_type().items() if t.startswith("aws:")}


def test_the_example_plan_changes_nothing_of_the_cluster(example_plan: Plan) -> None:
    types = {r.type for r in example_plan.resources}
    assert not types & NEVER_ADOPTED
    config_maps = {
        r.inputs.get("metadata", {}).get("name") for r in example_plan.of_type("kubernetes:core/v1:ConfigMap")
    }
    assert "aws-auth" not in config_maps
    # Security group rules: the MLflow database's own group, and the one rule config asks for on the cluster's.
    rules = {
        r.name: r.inputs["securityGroupId"]
        for r in example_plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    }
    assert rules["runner-to-api"] == CLUSTER_SG
    on_foundation = {name for name, group in rules.items() if group in (CLUSTER_SG, NODE_SG)}
    assert on_foundation == {"runner-to-api"}
    for rule in example_plan.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"):
        assert rule.inputs["securityGroupId"] not in (CLUSTER_SG, NODE_SG)


def test_the_example_plan_attaches_what_the_platform_needs(example_plan: Plan) -> None:
    eks = {r.name: r.type.split("/")[1] for r in example_plan.resources if r.type.startswith("aws:eks/")}
    assert {n: t for n, t in eks.items() if not t.startswith("podIdentityAssociation")} == {
        "cluster-access-111122223333-readonly": "accessEntry:AccessEntry",
        "cluster-access-111122223333-readonly-policy": "accessPolicyAssociation:AccessPolicyAssociation",
        "cluster-access-runner": "accessEntry:AccessEntry",
        "cluster-access-runner-policy": "accessPolicyAssociation:AccessPolicyAssociation",
        "cluster-addon-eks-pod-identity-agent": "addon:Addon",
        "nodepools-karpenter-node-access": "accessEntry:AccessEntry",
    }
    for resource in example_plan.resources:
        if resource.type.startswith("aws:eks/"):
            assert resource.inputs["clusterName"] == "acme-ml", resource.name  # the state's cluster, by value
    associations = {r.name for r in example_plan.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")}
    assert "nodepools-karpenter-pod-identity" in associations and "mlflow-pod-identity" in associations
    assert {"aws:sqs/queue:Queue", "aws:rds/instance:Instance", "aws:s3/bucket:Bucket"} <= set(_aws_types(example_plan))
    (db_rule,) = [
        r
        for r in example_plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.name == "mlflow-db-from-cluster"
    ]
    assert db_rule.inputs["referencedSecurityGroupId"] == NODE_SG  # pods carry the node security group


def test_the_cluster_layer_runs_on_the_adopted_cluster(example_plan: Plan) -> None:
    for node_class in example_plan.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"):
        assert node_class.inputs["spec"]["securityGroupSelectorTerms"] == [{"id": NODE_SG}]
        assert [t["id"] for t in node_class.inputs["spec"]["subnetSelectorTerms"]] == PRIVATE
    cluster_layer = {r.type for r in example_plan.in_layer("cluster")}
    for wanted in (
        "kubernetes:ray.io/v1:RayCluster",
        "kubernetes:serving.kserve.io/v1beta1:InferenceService",
        "kubernetes:karpenter.sh/v1:NodePool",
        "kubernetes:helm.sh/v3:Release",
    ):
        assert wanted in cluster_layer
    assert not any(t.startswith("aws:") for t in cluster_layer)  # AWS resources never go in the cluster layer


def _project_copy(tmp_path: Path, change: Any) -> Path:
    shutil.copytree(EXAMPLE, tmp_path / "example")
    path = tmp_path / "example" / "stacks" / "Pulumi.staging.yaml"
    stack = yaml.safe_load(path.read_text())
    change(stack["config"], tmp_path / "example")
    path.write_text(yaml.safe_dump(stack))
    return tmp_path / "example"


def test_explicit_values_without_agent_or_runner_rule_attach_less(tmp_path: Path) -> None:
    def change(config: dict[str, Any], _: Path) -> None:
        cluster = config["ml-platform:cluster"]
        cluster.pop("name")
        cluster["adopt"] = {**EXPLICIT, "install_pod_identity_agent": False}
        config["ml-platform:network"]["adopt"] = {"vpc_id": "vpc-0b7e4c1d9a2f63e58", "private_subnet_ids": PRIVATE}

    plan = plan_stack(load_stack(load_project(_project_copy(tmp_path, change)), "staging"))
    assert not {r.type for r in plan.resources} & NEVER_ADOPTED
    assert not plan.of_type("aws:eks/addon:Addon")
    rules = {r.name for r in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")}
    assert "runner-to-api" not in rules  # runner_api_ingress is off by default: the foundation admits the runner


def test_a_state_without_an_output_fails_the_plan_with_its_name(tmp_path: Path) -> None:
    def change(_: dict[str, Any], root: Path) -> None:
        state_path = root / "foundation" / "terraform.tfstate"
        state = json.loads(state_path.read_text())
        del state["outputs"]["cluster_endpoint"]
        state_path.write_text(json.dumps(state))

    with pytest.raises(ProgramError) as info:
        plan_stack(load_stack(load_project(_project_copy(tmp_path, change)), "staging"))
    assert "output 'cluster_endpoint' (for cluster_endpoint) is not in the state" in str(info.value)
    assert "terraform.tfstate" in str(info.value)


def test_first_preview_of_the_example_plans_the_same_resources(example_plan: Plan) -> None:
    """On a first `pulumi preview` computed outputs are unknown, but the adopted cluster's facts are not: they come
    from the state (an invoke answered at preview), so the cluster layer's node classes still name its groups."""
    preview = plan_stack(load_stack(load_project(EXAMPLE), "staging"), preview=True)
    assert {(r.layer, r.name, r.type) for r in preview.resources} == {
        (r.layer, r.name, r.type) for r in example_plan.resources
    }
    assert [str(e) for e in check_plan(preview).errors] == []
    assert preview.get("runner-to-api").inputs["securityGroupId"] == CLUSTER_SG
    assert preview.get("cluster-addon-eks-pod-identity-agent").inputs["clusterName"] == "acme-ml"
    assert preview.get("mlflow-db-from-cluster").inputs["referencedSecurityGroupId"] == NODE_SG
    order = check_order(example_plan)
    assert order.ok, (order.creation, order.deletion)


def test_the_plan_reports_what_it_attaches_and_that_nothing_else_changes(example_plan: Plan) -> None:
    """`mlp plan` prints this summary for a stack that adopts its cluster, and fails if anything is forbidden."""
    report = check_adoption(example_plan)
    assert report.ok
    assert report.summary() == (
        "Adopted cluster: 16 resources attached (3 AccessEntry, 2 AccessPolicyAssociation, 1 Addon, "
        "9 PodIdentityAssociation, 1 SecurityGroupIngressRule); none creates or changes the cluster, its node "
        "groups, launch templates, aws-auth ConfigMap, network or its security groups' existing rules; rules added "
        "to its security groups: runner-to-api (as config asks)"
    )


def test_the_adoption_check_can_fail() -> None:
    """On a stack that creates its cluster, the same check names every resource an adopted one must not have."""
    dev = plan_stack(load_stack(load_project(ROOT), "dev"))
    forbidden = {(r.name, what) for r, what in check_adoption(dev).forbidden}
    assert ("cluster-eks", "the EKS cluster") in forbidden
    assert ("cluster-system", "a managed node group") in forbidden
    assert ("network-vpc", "a VPC") in forbidden
