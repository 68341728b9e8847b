"""`mlp preflight` on an adopted cluster: the declared facts against the cluster itself.

The EKS calls are answered by botocore's Stubber, not moto: moto's EKS backend (5.2.5) has no ListAddons or
DescribeAddon and returns no `accessConfig` or `deletionProtection` from DescribeCluster, which are what these
checks read. Each case starts from one good cluster and changes one field, asserting the exact finding.
"""

from __future__ import annotations

import copy
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from mlplatform.infra.config import PlatformConfig, validate_config
from mlplatform.mlp.preflight import Finding, demand_items, max_nodes
from mlplatform.mlp.preflight_cluster import CHECK, check_adopted_cluster
from mlplatform.mlp.stackfile import load_project, load_stack
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "terraform-cluster"
NAME = "acme-ml"
CLUSTER_SG, EXTRA_SG = "sg-0a1b2c3d4e5f60718", "sg-0b2c3d4e5f6071829"

GOOD_CLUSTER: dict[str, Any] = {
    "name": NAME,
    "version": "1.35",
    "status": "ACTIVE",
    "resourcesVpcConfig": {
        "endpointPublicAccess": False,
        "endpointPrivateAccess": True,
        "publicAccessCidrs": [],
        "clusterSecurityGroupId": CLUSTER_SG,
        "securityGroupIds": [EXTRA_SG],
    },
    "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP"},
    "deletionProtection": True,
}
GOOD_CNI = {
    "addonName": "vpc-cni",
    "clusterName": NAME,
    "addonVersion": "v1.21.1-eksbuild.3",
    "configurationValues": '{"enableNetworkPolicy": "true"}',
}


def _config(**changes: Any) -> PlatformConfig:
    config = load_stack(load_project(EXAMPLE), "staging").config
    cluster = config["ml-platform:cluster"]
    for key, value in changes.items():
        if key == "environment":  # prod: also what prod requires of the rest of the stack
            config["ml-platform:environment"] = value
            config["ml-platform:tags"]["environment"] = value
            config["ml-platform:mlflow"]["database"]["multi_az"] = True
            cluster["adopt"]["node_role_names"] = ["system-eks-node-group-20260105093012345600000001"]
        elif key == "adopt":
            cluster["adopt"].update(value)
        else:
            cluster[key] = value
    return validate_config(config, "stacks/Pulumi.staging.yaml")


def _run(
    cfg: PlatformConfig,
    cluster: dict[str, Any] | None = None,
    addons: tuple[str, ...] = ("vpc-cni", "coredns", "kube-proxy"),
    cni: dict[str, Any] | None = None,
    rules: list[dict[str, Any]] | None = None,
) -> list[Finding]:
    eks = boto3.client("eks", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    ec2 = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(eks) as eks_stub, Stubber(ec2) as ec2_stub:
        eks_stub.add_response("describe_cluster", {"cluster": cluster or GOOD_CLUSTER}, {"name": NAME})
        if rules is not None:
            ec2_stub.add_response(
                "describe_security_group_rules",
                {"SecurityGroupRules": rules},
                {"Filters": [{"Name": "group-id", "Values": [CLUSTER_SG, EXTRA_SG]}]},
            )
        eks_stub.add_response("list_addons", {"addons": list(addons)}, {"clusterName": NAME})
        if "vpc-cni" in addons:
            eks_stub.add_response(
                "describe_addon", {"addon": cni or GOOD_CNI}, {"clusterName": NAME, "addonName": "vpc-cni"}
            )
        findings = check_adopted_cluster(cfg, eks, ec2, NAME, "stacks/Pulumi.staging.yaml")
        eks_stub.assert_no_pending_responses()
        ec2_stub.assert_no_pending_responses()
    assert all(f.check == CHECK for f in findings)
    return findings


def _problems(findings: list[Finding]) -> dict[str, tuple[str, str, str]]:
    return {f.subject: (f.severity, f.message, f.fix) for f in findings if f.severity != "ok"}


def test_the_example_on_a_good_cluster_passes() -> None:
    findings = _run(_config())
    assert _problems(findings) == {}
    assert {f.subject for f in findings} == {
        "version",
        "authentication mode",
        "endpoint",
        "runner reach",
        "vpc-cni",
        "eks-pod-identity-agent",
    }


def _changed(path: str, value: Any) -> dict[str, Any]:
    cluster = copy.deepcopy(GOOD_CLUSTER)
    node = cluster
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    return cluster


@pytest.mark.parametrize(
    ("path", "value", "subject", "message"),
    [
        ("version", "1.31", "version", "the cluster runs Kubernetes 1.31, which the catalog pins no add-ons or charts"),
        ("version", "1.34", "version", "the cluster runs Kubernetes 1.34 but cluster.version is 1.35"),
        (
            "accessConfig.authenticationMode",
            "CONFIG_MAP",
            "authentication mode",
            "the cluster's authentication mode is CONFIG_MAP: access entries (deployers, the runner, Karpenter's "
            "nodes) cannot be created",
        ),
        (
            "resourcesVpcConfig.endpointPublicAccess",
            True,
            "endpoint declaration",
            "cluster.endpoint.public declares false, the cluster's endpoint is public",
        ),
        ("status", "UPDATING", "status", "the cluster is UPDATING, not ACTIVE"),
    ],
)
def test_a_cluster_unlike_its_declaration_is_an_error(path: str, value: Any, subject: str, message: str) -> None:
    severity, text, _fix = _problems(_run(_config(), _changed(path, value)))[subject]
    assert severity == "error"
    assert text.startswith(message)


def test_prod_rules_are_checked_on_the_real_cluster() -> None:
    """Config validation refuses a declared public endpoint in prod; preflight refuses the real one."""
    cfg = _config(environment="prod")
    cluster = _changed("resourcesVpcConfig.endpointPublicAccess", True)
    cluster["deletionProtection"] = False
    problems = _problems(_run(cfg, cluster))
    assert problems["endpoint"][1] == "the cluster's API endpoint is public; prod requires a private endpoint"
    assert problems["deletion protection"] == (
        "error",
        "the cluster has no deletion protection; prod requires it",
        "set deletion_protection = true on the cluster (terraform-aws-eks)",
    )


def test_a_vpc_cni_without_cluster_network_policy_support_is_an_error() -> None:
    old = _problems(_run(_config(), cni={**GOOD_CNI, "addonVersion": "v1.20.4-eksbuild.2"}))["vpc-cni"]
    assert old[1].startswith("vpc-cni v1.20.4-eksbuild.2 has no ClusterNetworkPolicy support")
    assert old[2] == "upgrade the vpc-cni add-on to v1.21.1 or later (terraform-aws-eks addons)"
    off = _problems(_run(_config(), cni={**GOOD_CNI, "configurationValues": ""}))["vpc-cni"]
    assert off[1].startswith("vpc-cni v1.21.1-eksbuild.3 runs without network policy")
    unmanaged = _problems(_run(_config(), addons=("coredns",)))["vpc-cni"]
    assert unmanaged[0] == "warning" and "not a managed add-on" in unmanaged[1]


def test_the_pod_identity_agent_is_installed_once() -> None:
    twice = _problems(_run(_config(), addons=("vpc-cni", "eks-pod-identity-agent")))["eks-pod-identity-agent"]
    assert twice[2] == "set cluster.adopt.install_pod_identity_agent: false in stacks/Pulumi.staging.yaml"
    never = _problems(_run(_config(adopt={"install_pod_identity_agent": False})))["eks-pod-identity-agent"]
    assert never[1].startswith("the cluster has no eks-pod-identity-agent add-on and config says not to install it")


def test_the_runner_must_get_through_the_cluster_security_groups() -> None:
    cfg = _config(adopt={"runner_api_ingress": False})
    only_itself = [
        {"IsEgress": False, "IpProtocol": "-1", "ReferencedGroupInfo": {"GroupId": CLUSTER_SG}},
        {"IsEgress": True, "IpProtocol": "-1", "CidrIpv4": "0.0.0.0/0"},
    ]
    severity, message, fix = _problems(_run(cfg, rules=only_itself))["runner reach"]
    assert (severity, fix) == (
        "error",
        "set cluster.adopt.runner_api_ingress: true in stacks/Pulumi.staging.yaml, or admit the private subnets on "
        "443 in Terraform (terraform-aws-eks security_group_additional_rules)",
    )
    subnets = [
        *only_itself,
        {"IsEgress": False, "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIpv4": "10.60.0.0/16"},
    ]
    severity, message, _ = _problems(_run(cfg, rules=subnets))["runner reach"]
    assert severity == "warning" and message.startswith("the cluster's security groups admit 10.60.0.0/16 on 443")


def test_deployers_outside_the_public_endpoint_cidrs_cannot_reach_it() -> None:
    cfg = _config(
        endpoint={"public": True, "public_cidrs": ["198.51.100.0/24"]},
        runner={"enabled": False},
        deployers=["arn:aws:iam::111122223333:role/Deployer"],
    )
    cluster = _changed("resourcesVpcConfig.endpointPublicAccess", True)
    cluster["resourcesVpcConfig"]["publicAccessCidrs"] = ["203.0.113.0/24"]
    severity, message, _ = _problems(_run(cfg, cluster))["deployer reach"]
    assert severity == "error"
    assert message.startswith(
        "cluster.endpoint.public_cidrs 198.51.100.0/24 are outside the endpoint's publicAccessCidrs"
    )


def test_a_missing_cluster_is_named() -> None:
    eks = boto3.client("eks", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(eks) as stub:
        stub.add_client_error("describe_cluster", "ResourceNotFoundException", "No cluster found for name: acme-ml.")
        (finding,) = check_adopted_cluster(_config(), eks, None, NAME)
    assert (finding.severity, finding.message) == ("error", "no EKS cluster acme-ml in us-east-1: nothing to adopt")


def test_the_adopted_cluster_s_own_nodes_are_not_counted_as_demand() -> None:
    cfg = _config()
    assert not [i for i in demand_items(cfg) if i.source == "cluster.system_node_group"]
    assert "system nodes" not in max_nodes(cfg)[1]


def test_preflight_reads_the_cluster_name_from_the_state() -> None:
    from mlplatform.mlp.cli import _adopted_cluster_name

    assert _adopted_cluster_name(_config(), EXAMPLE) == NAME
