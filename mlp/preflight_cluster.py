"""`mlp preflight` on an adopted cluster (`cluster.adopt`): what the stack file declares or assumes about a cluster
it did not create, compared with the cluster itself (read-only: eks:DescribeCluster, eks:ListAddons,
eks:DescribeAddon, ec2:DescribeSecurityGroupRules).

- the Kubernetes version: one the catalog pins add-ons and charts for, and the stack's `cluster.version`;
- the authentication mode includes API (the platform grants access with access entries);
- the endpoint: prod's rules (private; no 0.0.0.0/0 outside dev; deletion protection) hold for the real cluster,
  not only for what config declares, and whoever runs the cluster layer reaches it (the runner through a rule on
  the cluster's security groups, or deployers through the public endpoint's CIDRs);
- the add-ons the platform needs: the VPC CNI at v1.21.1 or later with network policy enabled (the platform's
  ClusterNetworkPolicy fences), and the Pod Identity agent either present or installed by the platform, not both.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from mlplatform.infra.catalog import versions as version_catalog
from mlplatform.infra.config import PlatformConfig
from mlplatform.mlp.preflight import Finding, _call, _not_checked, _RefusedError

CHECK = "adopted-cluster"
MIN_VPC_CNI = (1, 21, 1)
"""The first VPC CNI with ClusterNetworkPolicy (admin tier) support in its network policy agent."""


def _version(value: str) -> tuple[int, ...] | None:
    match = re.match(r"^v?(\d+)\.(\d+)\.(\d+)", value)
    return tuple(int(p) for p in match.groups()) if match else None


def _network_policy_enabled(configuration_values: str | None) -> bool:
    if not configuration_values:
        return False
    try:
        values = json.loads(configuration_values)
    except ValueError:
        return False
    return isinstance(values, dict) and str(values.get("enableNetworkPolicy", "")).lower() == "true"


def check_adopted_cluster(
    cfg: PlatformConfig, eks: Any, ec2: Any, cluster_name: str, source: str = ""
) -> list[Finding]:
    """Every finding about the adopted cluster `cluster_name` (from config or the Terraform state)."""
    adopt = cfg.cluster.adopt
    assert adopt is not None
    where = source or "the stack file"
    try:
        cluster = _call("eks:DescribeCluster", eks.describe_cluster, ("ResourceNotFoundException",), name=cluster_name)[
            "cluster"
        ]
    except _RefusedError as exc:
        if exc.denied:
            return [_not_checked(CHECK, cluster_name, exc.error, "the adopted cluster", "eks:DescribeCluster")]
        return [
            Finding(
                CHECK,
                "error",
                cluster_name,
                f"no EKS cluster {cluster_name} in {cfg.region}: nothing to adopt",
                f"check cluster.adopt in {where} (or the Terraform state's cluster_name) and aws:region",
            )
        ]
    findings = [
        *_check_version(cfg, cluster, where),
        *_check_authentication(cfg, cluster, where),
        *_check_endpoint(cfg, cluster, where),
        *_check_reachability(cfg, cluster, ec2, where),
        *_check_addons(cfg, eks, cluster_name, where),
    ]
    if cluster.get("status", "ACTIVE") != "ACTIVE":
        findings.append(
            Finding(CHECK, "error", "status", f"the cluster is {cluster['status']}, not ACTIVE", "wait, then rerun")
        )
    return findings


def _check_version(cfg: PlatformConfig, cluster: dict[str, Any], where: str) -> list[Finding]:
    version = str(cluster.get("version", ""))
    pinned = version_catalog.eks().versions
    if version not in pinned:
        return [
            Finding(
                CHECK,
                "error",
                "version",
                f"the cluster runs Kubernetes {version}, which the catalog pins no add-ons or charts for "
                f"(pinned: {', '.join(sorted(pinned))})",
                "upgrade the cluster (in Terraform) to a pinned version, or use a release of the platform that pins "
                f"{version}",
            )
        ]
    if version != cfg.cluster.version:
        return [
            Finding(
                CHECK,
                "error",
                "version",
                f"the cluster runs Kubernetes {version} but cluster.version is {cfg.cluster.version}",
                f"set cluster.version: {version!r} in {where}",
            )
        ]
    return [Finding(CHECK, "ok", "version", f"Kubernetes {version}, pinned in the catalog")]


def _check_authentication(cfg: PlatformConfig, cluster: dict[str, Any], where: str) -> list[Finding]:
    assert cfg.cluster.adopt is not None
    declared = cfg.cluster.adopt.authentication_mode
    mode = str((cluster.get("accessConfig") or {}).get("authenticationMode") or "CONFIG_MAP")
    if mode not in ("API", "API_AND_CONFIG_MAP"):
        return [
            Finding(
                CHECK,
                "error",
                "authentication mode",
                f"the cluster's authentication mode is {mode}: access entries (deployers, the runner, Karpenter's "
                "nodes) cannot be created",
                'set authentication_mode = "API_AND_CONFIG_MAP" on the cluster (terraform-aws-eks), apply, and '
                f"declare it in cluster.adopt.authentication_mode in {where}",
            )
        ]
    if mode != declared:
        return [
            Finding(
                CHECK,
                "warning",
                "authentication mode",
                f"the cluster's authentication mode is {mode}, cluster.adopt.authentication_mode declares {declared}",
                f"set cluster.adopt.authentication_mode: {mode} in {where}",
            )
        ]
    return [Finding(CHECK, "ok", "authentication mode", f"{mode}: access entries can be created")]


def _check_endpoint(cfg: PlatformConfig, cluster: dict[str, Any], where: str) -> list[Finding]:
    """Prod's rules on the real cluster, and the declared endpoint against it."""
    vpc = cluster.get("resourcesVpcConfig") or {}
    public = bool(vpc.get("endpointPublicAccess"))
    cidrs = list(vpc.get("publicAccessCidrs") or [])
    findings: list[Finding] = []
    if public and cfg.is_prod:
        findings.append(
            Finding(
                CHECK,
                "error",
                "endpoint",
                "the cluster's API endpoint is public; prod requires a private endpoint",
                "set endpoint_public_access = false on the cluster (terraform-aws-eks) and deploy the cluster layer "
                "with the in-VPC runner",
            )
        )
    elif public and "0.0.0.0/0" in cidrs and cfg.environment != "dev":
        findings.append(
            Finding(
                CHECK,
                "error",
                "endpoint",
                "the cluster's public endpoint admits 0.0.0.0/0 (allowed only in dev)",
                "set endpoint_public_access_cidrs on the cluster to your networks",
            )
        )
    if public != cfg.cluster.endpoint.public:
        findings.append(
            Finding(
                CHECK,
                "error",
                "endpoint declaration",
                f"cluster.endpoint.public declares {str(cfg.cluster.endpoint.public).lower()}, the cluster's endpoint "
                f"is {'public' if public else 'private'} (who deploys the cluster layer follows from it)",
                f"set cluster.endpoint.public: {str(public).lower()} in {where}, or change the cluster",
            )
        )
    if cfg.is_prod and cluster.get("deletionProtection") is False:
        findings.append(
            Finding(
                CHECK,
                "error",
                "deletion protection",
                "the cluster has no deletion protection; prod requires it",
                "set deletion_protection = true on the cluster (terraform-aws-eks)",
            )
        )
    if not findings:
        findings.append(Finding(CHECK, "ok", "endpoint", f"{'public' if public else 'private'} endpoint, as declared"))
    return findings


def _check_reachability(cfg: PlatformConfig, cluster: dict[str, Any], ec2: Any, where: str) -> list[Finding]:
    """Whoever runs the cluster layer reaches the API: the runner through the cluster's security groups, deployers
    through the public endpoint's CIDRs (a private endpoint without the runner: routes preflight cannot see)."""
    assert cfg.cluster.adopt is not None
    vpc = cluster.get("resourcesVpcConfig") or {}
    if cfg.runs_in_vpc_runner:
        if cfg.cluster.adopt.runner_api_ingress:
            return [Finding(CHECK, "ok", "runner reach", "the cloud layer adds the runner's rule on 443")]
        groups = [g for g in [vpc.get("clusterSecurityGroupId"), *(vpc.get("securityGroupIds") or [])] if g]
        try:
            rules = _call(
                "ec2:DescribeSecurityGroupRules",
                ec2.describe_security_group_rules,
                Filters=[{"Name": "group-id", "Values": groups}],
            )["SecurityGroupRules"]
        except _RefusedError as exc:
            return [
                _not_checked(CHECK, "runner reach", exc.error, "the runner's way in", "ec2:DescribeSecurityGroupRules")
            ]
        admits = [
            r
            for r in rules
            if not r.get("IsEgress")
            and (r.get("IpProtocol") == "-1" or (r.get("FromPort", 0) <= 443 <= r.get("ToPort", 0)))
            and (r.get("CidrIpv4") or (r.get("ReferencedGroupInfo") or {}).get("GroupId") not in (None, *groups))
        ]
        if not admits:
            return [
                Finding(
                    CHECK,
                    "error",
                    "runner reach",
                    f"no rule on the cluster's security groups ({', '.join(groups)}) admits anything but themselves "
                    "on 443: the in-VPC runner cannot reach the API",
                    f"set cluster.adopt.runner_api_ingress: true in {where}, or admit the private subnets on 443 in "
                    "Terraform (terraform-aws-eks security_group_additional_rules)",
                )
            ]
        sources = sorted({r.get("CidrIpv4") or r["ReferencedGroupInfo"]["GroupId"] for r in admits})
        return [
            Finding(
                CHECK,
                "warning",
                "runner reach",
                f"the cluster's security groups admit {', '.join(sources)} on 443; the runner's group is not among "
                "them unless one is the private subnets' range",
                f"check that these cover the private subnets, or set cluster.adopt.runner_api_ingress: true in {where}",
            )
        ]
    if not vpc.get("endpointPublicAccess"):
        return []  # the cluster-access check already says the deployers' network must reach the VPC
    allowed = [ipaddress.ip_network(c) for c in (vpc.get("publicAccessCidrs") or ["0.0.0.0/0"])]
    outside = [
        c
        for c in cfg.cluster.endpoint.public_cidrs
        if not any(ipaddress.ip_network(c).subnet_of(a) for a in allowed)  # type: ignore[arg-type]
    ]
    if outside:
        return [
            Finding(
                CHECK,
                "error",
                "deployer reach",
                f"cluster.endpoint.public_cidrs {', '.join(outside)} are outside the endpoint's publicAccessCidrs "
                f"({', '.join(str(a) for a in allowed)}): deployers there cannot reach the API",
                "add them to endpoint_public_access_cidrs on the cluster, or deploy from an allowed network",
            )
        ]
    return [Finding(CHECK, "ok", "deployer reach", "the public endpoint admits cluster.endpoint.public_cidrs")]


def _check_addons(cfg: PlatformConfig, eks: Any, cluster_name: str, where: str) -> list[Finding]:
    assert cfg.cluster.adopt is not None
    try:
        names = set(_call("eks:ListAddons", eks.list_addons, clusterName=cluster_name)["addons"])
        cni = (
            _call("eks:DescribeAddon", eks.describe_addon, clusterName=cluster_name, addonName="vpc-cni")["addon"]
            if "vpc-cni" in names
            else None
        )
    except _RefusedError as exc:
        return [_not_checked(CHECK, "add-ons", exc.error, "the cluster's add-ons", "eks:ListAddons, eks:DescribeAddon")]
    findings: list[Finding] = []
    minimum = "v" + ".".join(map(str, MIN_VPC_CNI))
    if cni is None:
        findings.append(
            Finding(
                CHECK,
                "warning",
                "vpc-cni",
                "the VPC CNI is not a managed add-on: preflight cannot read its version or configuration; the "
                f"platform's network fences need {minimum} or later with network policy enabled",
                "make vpc-cni a managed add-on (terraform-aws-eks addons) with configuration_values "
                '{"enableNetworkPolicy": "true"}',
            )
        )
    else:
        version = str(cni.get("addonVersion", ""))
        parsed = _version(version)
        if parsed is None or parsed < MIN_VPC_CNI:
            findings.append(
                Finding(
                    CHECK,
                    "error",
                    "vpc-cni",
                    f"vpc-cni {version} has no ClusterNetworkPolicy support: the platform's admin-tier fences "
                    "(tenants, the database guard) would not be enforced",
                    f"upgrade the vpc-cni add-on to {minimum} or later (terraform-aws-eks addons)",
                )
            )
        elif not _network_policy_enabled(cni.get("configurationValues")):
            findings.append(
                Finding(
                    CHECK,
                    "error",
                    "vpc-cni",
                    f"vpc-cni {version} runs without network policy: no NetworkPolicy or ClusterNetworkPolicy of the "
                    "platform would be enforced",
                    'set configuration_values = jsonencode({ enableNetworkPolicy = "true" }) on the vpc-cni add-on',
                )
            )
        else:
            findings.append(Finding(CHECK, "ok", "vpc-cni", f"vpc-cni {version} with network policy enabled"))
    has_agent = "eks-pod-identity-agent" in names
    install = cfg.cluster.adopt.install_pod_identity_agent
    if has_agent and install:
        findings.append(
            Finding(
                CHECK,
                "error",
                "eks-pod-identity-agent",
                "the cluster has the eks-pod-identity-agent add-on and the cloud layer would install it again "
                "(ResourceInUseException)",
                f"set cluster.adopt.install_pod_identity_agent: false in {where}",
            )
        )
    elif not has_agent and not install:
        findings.append(
            Finding(
                CHECK,
                "error",
                "eks-pod-identity-agent",
                "the cluster has no eks-pod-identity-agent add-on and config says not to install it: the "
                "platform's workloads would get no AWS credentials",
                f"set cluster.adopt.install_pod_identity_agent: true in {where}, or add the add-on in Terraform",
            )
        )
    else:
        how = "present" if has_agent else "installed by the cloud layer"
        findings.append(Finding(CHECK, "ok", "eks-pod-identity-agent", f"the Pod Identity agent is {how}"))
    return findings
