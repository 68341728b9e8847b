"""The prod plan's feature store: what the tables, roles and Kubernetes objects say (the contract test runs real
Feast against them, tests/test_feast_contract.py)."""

from __future__ import annotations

import json
from typing import Any

from mlplatform.infra.features import documents
from mlplatform.mlp.planner import Plan


def _statements(plan: Plan, role: str) -> list[dict[str, Any]]:
    (policy,) = [r for r in plan.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == f"features-{role}-policy"]
    statements: list[dict[str, Any]] = json.loads(policy.inputs["policy"])["Statement"]
    return statements


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for st in statements:
        out.update([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
    return out


def test_the_prod_tables_are_on_demand_encrypted_with_the_lake_key_and_protected(plans: dict[str, Plan]) -> None:
    prod = plans["prod"]
    (lake_key,) = [r for r in prod.of_type("aws:kms/key:Key") if r.name == "lake-key"]
    tables = prod.of_type("aws:dynamodb/table:Table")
    assert sorted(str(t.inputs["name"]) for t in tables) == [
        "mlp-prod.ranking.item_popularity",
        "mlp-prod.ranking.user_activity",
    ]
    for t in tables:
        assert t.inputs["billingMode"] == "PAY_PER_REQUEST" and t.inputs["hashKey"] == documents.HASH_KEY
        assert t.inputs["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": lake_key.outputs["arn"]}
        assert t.inputs["deletionProtectionEnabled"] is True and t.inputs["pointInTimeRecovery"] == {"enabled": True}
        assert t.options["protect"] is True and t.options["retainOnDelete"] is True
        assert t.inputs["tags"]["cost-center"] == "ml-platform"
    # dev and staging configure no feature store
    assert not plans["dev"].of_type("aws:dynamodb/table:Table")


def test_the_feature_server_role_reads_only_and_the_materializer_creates_no_table(plans: dict[str, Plan]) -> None:
    prod = plans["prod"]
    tables = {str(t.outputs["arn"]) for t in prod.of_type("aws:dynamodb/table:Table")}
    server = _statements(prod, "server")
    assert _actions(server) == {
        "s3:GetObject",
        "s3:ListBucket",
        "kms:Decrypt",
        "kms:DescribeKey",
        "dynamodb:BatchGetItem",
    }
    (reads,) = [s for s in server if s["Sid"] == "ReadOnlineFeatures"]
    assert set(reads["Resource"]) == tables
    materializer = _actions(_statements(prod, "materializer"))
    assert {"dynamodb:BatchWriteItem", "dynamodb:DescribeTable", "s3:PutObject"} <= materializer
    assert not {"dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:UpdateTable"} & materializer


def test_teams_reach_the_feature_server_and_nothing_else_in_its_namespace(plans: dict[str, Plan]) -> None:
    prod = plans["prod"]
    (clients,) = [
        r
        for r in prod.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if r.name.endswith("feature-server-clients")
    ]
    (rule,) = clients.inputs["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": documents.FEATURE_SERVER_PORT}]
    assert len(rule["from"]) == 2  # the team namespaces and the serving namespace (who reaches it: below)
    team_egress = [
        r
        for r in prod.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        if r.inputs["metadata"]["name"] == "allow-platform-services"
    ]
    assert team_egress
    for policy in team_egress:
        namespaces = [
            to["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for rule in policy.inputs["spec"]["egress"]
            for to in rule["to"]
        ]
        assert documents.FEAST_NAMESPACE in namespaces
    (server,) = [r for r in prod.of_type("kubernetes:apps/v1:Deployment") if r.name == "features-server"]
    pod = server.inputs["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == documents.FEATURE_SERVER_SERVICE_ACCOUNT
    assert pod["containers"][0]["command"] == documents.server_command()
    (service,) = [r for r in prod.of_type("kubernetes:core/v1:Service") if r.name == "features-service"]
    assert service.inputs["spec"].get("type", "ClusterIP") == "ClusterIP"


def test_who_reaches_the_feature_server_and_where_its_pods_may_go(plans: dict[str, Plan]) -> None:
    """By the plan's NetworkPolicies as the VPC CNI's agent applies them (tests/network_policy.py): team pods and the
    serving namespace's model servers reach the feature server's port; a pod of another platform namespace does
    not; the feature server opens no connection into the cluster (its AWS calls leave it)."""
    from mlplatform.mlp import rbac
    from mlplatform.mlp.isolation import cluster_network_policies, network_policies
    from tests.network_policy import Destination, Pod, connection_allowed

    prod = plans["prod"]
    policies, cluster = network_policies(prod), cluster_network_policies(prod)
    namespaces = rbac.namespaces(prod)

    def pod(namespace: str, labels: dict[str, str]) -> Pod:
        return Pod(namespace, labels, dict(namespaces[namespace]))

    server = pod(documents.FEAST_NAMESPACE, dict(documents.FEATURE_SERVER_SELECTOR))
    at_server = Destination(documents.FEATURE_SERVER_PORT, pod=server)
    team = next(n for n, lb in namespaces.items() if lb.get(rbac.TENANT_LABEL))
    assert connection_allowed(policies, cluster, pod(team, {"app": "trainer"}), at_server)
    assert connection_allowed(policies, cluster, pod("serving", {"app": "ranker"}), at_server)
    assert not connection_allowed(policies, cluster, pod("monitoring", {"app": "x"}), at_server)
    materializer = pod(documents.FEAST_NAMESPACE, dict(documents.MATERIALIZER_SELECTOR))
    assert not connection_allowed(policies, cluster, materializer, at_server)
    assert not connection_allowed(
        policies, cluster, server, Destination(5000, pod=pod("mlflow", {"app.kubernetes.io/name": "mlflow"}))
    )
