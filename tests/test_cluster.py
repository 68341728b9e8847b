"""The EKS cluster component in the shipped stacks' plans: the security-relevant inputs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlplatform.infra.catalog import versions
from mlplatform.infra.cluster import documents
from mlplatform.infra.tagging.rules import REQUIRED_COST_TAGS
from mlplatform.mlp.planner import Plan


def _cluster(plan: Plan) -> dict[str, Any]:
    (cluster,) = plan.of_type("aws:eks/cluster:Cluster")
    return cluster.inputs


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_control_plane_is_encrypted_logged_api_authenticated_and_pinned(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    c = _cluster(plan)
    assert c["version"] == "1.35"
    assert c["encryptionConfig"]["resources"] == ["secrets"]
    secrets_key = plan.get("cluster-secrets-key")
    assert c["encryptionConfig"]["provider"]["keyArn"].startswith("arn:aws:kms:us-east-1:")
    assert secrets_key.inputs["enableKeyRotation"] is True
    assert c["enabledClusterLogTypes"] == ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    assert c["accessConfig"] == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False}
    assert c["upgradePolicy"] == {"supportType": "STANDARD"}
    assert c["bootstrapSelfManagedAddons"] is False
    assert c["vpcConfig"]["endpointPrivateAccess"] is True
    assert len(c["vpcConfig"]["subnetIds"]) == (2 if stack == "dev" else 3)
    log_group = plan.get("cluster-control-plane-logs").inputs
    assert log_group["name"] == f"/aws/eks/mlp-{stack}/cluster" and log_group["kmsKeyId"]


def test_prod_endpoint_is_private_and_cluster_protected(plans: dict[str, Plan]) -> None:
    c = _cluster(plans["prod"])
    assert c["vpcConfig"]["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in c["vpcConfig"]
    assert c["deletionProtection"] is True


def test_dev_public_endpoint_is_limited_to_configured_cidrs(plans: dict[str, Plan]) -> None:
    c = _cluster(plans["dev"])
    assert c["vpcConfig"]["endpointPublicAccess"] is True
    assert c["vpcConfig"]["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_key_policies_name_no_wildcard_principal(plans: dict[str, Plan]) -> None:
    for key in plans["prod"].of_type("aws:kms/key:Key"):
        for statement in json.loads(key.inputs["policy"])["Statement"]:
            assert statement["Principal"] != "*" and "*" not in statement["Principal"].get("AWS", "")


def test_access_entries_follow_the_admins_in_config(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    entries = {
        e.inputs["principalArn"] for e in plan.of_type("aws:eks/accessEntry:AccessEntry") if e.parent == "cluster"
    }
    runner_role = plan.get("runner-role").outputs["arn"]
    assert entries == {
        *(f"arn:aws:iam::444455556666:role/{r}" for r in ("PlatformAdmin", "OnCall", "ReadOnly")),
        runner_role,
    }
    policies = {
        a.inputs["principalArn"].rsplit("/", 1)[-1]: (
            a.inputs["policyArn"].rsplit("/", 1)[-1],
            a.inputs["accessScope"]["type"],
        )
        for a in plan.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    }
    assert policies == {
        "PlatformAdmin": ("AmazonEKSClusterAdminPolicy", "cluster"),
        "OnCall": ("AmazonEKSAdminPolicy", "cluster"),
        "ReadOnly": ("AmazonEKSViewPolicy", "cluster"),
        runner_role.rsplit("/", 1)[-1]: ("AmazonEKSClusterAdminPolicy", "cluster"),
    }
    dev = {
        a.inputs["principalArn"].rsplit("/", 1)[-1]: (a.inputs["policyArn"].rsplit("/", 1)[-1], a.inputs["accessScope"])
        for a in plans["dev"].of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    }
    assert dev["MLEngineer"] == ("AmazonEKSEditPolicy", {"type": "namespace", "namespaces": ["team-research"]})
    # dev has a public endpoint and no runner: its deployer gets cluster admin, nobody else is a hidden admin.
    assert dev["PlatformDeployer"] == ("AmazonEKSClusterAdminPolicy", {"type": "cluster"})
    assert set(dev) == {"PlatformAdmin", "MLEngineer", "PlatformDeployer"}


def test_addons_are_pinned_from_the_catalog_and_ordered_around_the_nodes(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    addons = {a.inputs["addonName"]: a for a in plan.of_type("aws:eks/addon:Addon")}
    assert {n: a.inputs["addonVersion"] for n, a in addons.items()} == versions.addon_versions("1.35")
    node_group = plan.get("cluster-system")
    for name in documents.ADDONS_BEFORE_NODES:
        assert addons[name].name in node_group.options["dependsOn"]
    for name in documents.ADDONS_AFTER_NODES:
        assert "cluster-system" in addons[name].options["dependsOn"]
    assert json.loads(addons["vpc-cni"].inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}
    volume_tags = json.loads(addons["aws-ebs-csi-driver"].inputs["configurationValues"])["controller"][
        "extraVolumeTags"
    ]
    assert all(volume_tags[k] for k in REQUIRED_COST_TAGS)


def test_addon_roles_use_pod_identity_scoped_to_their_service_account(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    for addon, (service_account, policy) in documents.ADDON_POD_IDENTITY.items():
        (assoc,) = plan.get(f"cluster-addon-{addon}").inputs["podIdentityAssociations"]
        assert assoc["serviceAccount"] == service_account
        role = plan.get(f"cluster-{addon}-role")
        (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
        assert statement["Condition"]["StringEquals"] == {
            "aws:RequestTag/eks-cluster-name": "mlp-prod",
            "aws:RequestTag/kubernetes-namespace": "kube-system",
            "aws:RequestTag/kubernetes-service-account": service_account,
        }
        assert plan.get(f"cluster-{addon}-{policy}").inputs["policyArn"].endswith(f"/{policy}")
    node_policies = {
        a.inputs["policyArn"].rsplit("/", 1)[-1]
        for a in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.name.startswith("cluster-node-")
    }
    assert "AmazonEKS_CNI_Policy" not in node_policies  # the CNI's rights are not on every node
    assert node_policies == set(documents.NODE_ROLE_POLICIES)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_system_launch_template_requires_imdsv2_encrypts_and_tags_everything(
    plans: dict[str, Plan], stack: str
) -> None:
    plan = plans[stack]
    lt = plan.get("cluster-system-lt").inputs
    assert lt["metadataOptions"]["httpTokens"] == "required"
    assert lt["metadataOptions"]["httpPutResponseHopLimit"] == 1
    (device,) = lt["blockDeviceMappings"]
    assert device["ebs"]["encrypted"] == "true" and device["ebs"]["volumeType"] == "gp3"
    specs = {s["resourceType"]: s["tags"] for s in lt["tagSpecifications"]}
    assert set(specs) == {"instance", "volume", "network-interface"}
    provider_tags = plan.get("aws").inputs["defaultTags"]["tags"]
    for tags in specs.values():
        assert all(tags.get(k) for k in REQUIRED_COST_TAGS)
        assert {k: v for k, v in tags.items() if k != "Name"} == provider_tags
    ng = plan.get("cluster-system")
    assert ng.inputs["launchTemplate"]["version"] == "1"
    assert ng.options["ignoreChanges"] == ["scalingConfig.desiredSize"]


def test_the_cluster_layer_builds_its_provider_from_the_cloud_layer_outputs(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    provider = plan.get("k8s")
    assert provider.layer == "cluster" and provider.inputs["kubeconfig"] == "[secret]"
    # The kubeconfig is made of the cloud layer's exports, read through the StackReference: known in the cluster
    # layer's first preview, so every object is checked against the live API server.
    assert provider.references == {"kubeconfig": ["organization/ml-platform/prod"]}
    reference = plan.get("organization/ml-platform/prod")
    assert reference.type == "pulumi:pulumi:StackReference" and reference.layer == "cluster"
    cluster = plan.get("cluster-eks").outputs
    kubeconfig = json.loads(_unsecret(provider))
    assert kubeconfig["clusters"][0]["cluster"]["server"] == cluster["endpoint"]
    assert kubeconfig["users"][0]["user"]["exec"]["args"][-3] == "mlp-prod"


def _unsecret(provider: Any) -> str:
    """The provider's kubeconfig as the mocks answered it (outputs hold it unredacted: it holds no credential)."""
    value = provider.outputs["kubeconfig"]
    assert isinstance(value, str)
    return value


def test_kubeconfig_uses_short_lived_tokens() -> None:
    config = documents.kubeconfig("mlp-prod", "https://example", "Q0E=", "us-east-1")
    user = config["users"][0]["user"]
    assert "token" not in user and "client-key-data" not in user
    assert user["exec"]["command"] == "aws"
    assert user["exec"]["args"] == [
        "--region",
        "us-east-1",
        "eks",
        "get-token",
        "--cluster-name",
        "mlp-prod",
        "--output",
        "json",
    ]
