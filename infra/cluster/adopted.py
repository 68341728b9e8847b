"""Adopt an existing EKS cluster (explicit values, or the outputs of a Terraform state) and attach to it only what
the platform needs that such a cluster lacks: access entries for the platform's roles, and, when config asks, the
eks-pod-identity-agent add-on.

Nothing of the cluster is changed: no control plane, node group, launch template, aws-auth ConfigMap, other add-on
or security group rule is created or modified here (the in-VPC runner's one API rule is the runner's, and only
when `cluster.adopt.runner_api_ingress` asks). Its facts (name, endpoint, CA, security groups) are read once and
exposed like a created cluster's, so that every other component and the cluster layer take them unchanged.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from mlplatform.infra.aws_account import aws_account
from mlplatform.infra.aws_provider import GetTokenOptions
from mlplatform.infra.cluster import documents
from mlplatform.infra.cluster.component import AdminAccess, create_access
from mlplatform.infra.cluster.terraform_state import AdoptedClusterFacts, cluster_from_outputs
from mlplatform.infra.terraform_reference import TerraformStateSource, state_outputs

COMPONENT_TYPE = "mlplatform:cluster:AdoptedCluster"
POD_IDENTITY_AGENT = "eks-pod-identity-agent"


@dataclass(frozen=True, kw_only=True)
class AdoptedClusterArgs:
    facts: AdoptedClusterFacts | None = None
    """Explicit values (config's cluster.adopt), or None with a terraform_state."""
    terraform_state: TerraformStateSource | None = None
    kubernetes_version: str
    """cluster.version: a state's `cluster_version` must equal it."""
    expected_name: str | None = None
    """cluster.name when configured: a state's cluster must have that name."""
    admins: Sequence[AdminAccess] = ()
    pod_identity_agent_version: str | None = None
    """Install the eks-pod-identity-agent add-on at this version; None: the cluster has it already."""
    node_role_names: Sequence[str] = ()
    """The cluster's own node roles (only the image cache's import policy is added to them)."""
    region: str
    tags: Mapping[str, str] = field(default_factory=dict)
    get_token: GetTokenOptions = field(default_factory=GetTokenOptions)
    """Who the kubeconfig's `aws eks get-token` acts as: the stack's AWS provider settings (`aws:profile`, ...)."""


class AdoptedCluster(pulumi.ComponentResource):
    """The same surface as `Cluster` for what the rest of the cloud layer reads; creates only access entries and,
    optionally, the Pod Identity agent add-on."""

    cluster_name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    certificate_authority: pulumi.Output[str]
    cluster_security_group_id: pulumi.Output[str]
    """A group on the control plane's interfaces (the runner's API rule goes here when config asks)."""
    node_security_group_id: pulumi.Output[str]
    """The group the cluster's nodes carry: Karpenter's nodes get it, MLflow's database admits it."""
    kubeconfig: pulumi.Output[str]
    node_role_names: list[pulumi.Input[str]]
    access_ready: list[pulumi.Resource]
    pod_identity_agent: aws.eks.Addon | None

    def __init__(self, name: str, args: AdoptedClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self._partition = aws_account(self).partition
        facts = self._read_facts()
        self.cluster_name = facts.apply(lambda f: f.cluster_name)
        self.endpoint = facts.apply(lambda f: f.endpoint)
        self.certificate_authority = facts.apply(lambda f: f.certificate_authority_data)
        self.cluster_security_group_id = facts.apply(lambda f: f.cluster_security_group_id)
        self.node_security_group_id = facts.apply(lambda f: f.node_security_group_id)
        self.node_role_names = list(args.node_role_names)
        self.kubeconfig = pulumi.Output.secret(
            facts.apply(
                lambda f: json.dumps(
                    documents.kubeconfig(
                        f.cluster_name, f.endpoint, f.certificate_authority_data, args.region, args.get_token
                    ),
                    sort_keys=True,
                )
            )
        )
        self.access_ready = []
        for admin in args.admins:
            self.grant_access(admin)
        self.pod_identity_agent = self._create_pod_identity_agent()
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "endpoint": self.endpoint,
                "cluster_security_group_id": self.cluster_security_group_id,
                "node_security_group_id": self.node_security_group_id,
            }
        )

    def _read_facts(self) -> pulumi.Output[AdoptedClusterFacts]:
        args = self._args
        if args.facts is not None:
            return pulumi.Output.from_input(args.facts)
        state = args.terraform_state
        if state is None:
            raise ValueError("AdoptedCluster needs explicit facts or a terraform_state")
        source = state.describe()
        pick = functools.partial(
            cluster_from_outputs,
            names=state.output_names,
            source=source,
            expected_version=args.kubernetes_version,
            expected_name=args.expected_name,
        )
        return state_outputs(state, self).apply(lambda outputs: pick(outputs))

    def grant_access(self, admin: AdminAccess, opts: pulumi.ResourceOptions | None = None) -> pulumi.Resource:
        """An access entry and its access policy (the cluster's authentication mode includes API: checked by
        config validation against the declared mode, and by `mlp preflight` against the cluster)."""
        entry, association = create_access(
            self._name,
            admin,
            cluster_name=self.cluster_name,
            partition=self._partition,
            tags=self._args.tags,
            opts=pulumi.ResourceOptions.merge(self._child, opts),
        )
        self.access_ready.extend([entry, association])
        return association

    def _create_pod_identity_agent(self) -> aws.eks.Addon | None:
        args = self._args
        if args.pod_identity_agent_version is None:
            return None
        # NONE on create: an agent someone installed by hand keeps its configuration (the create then fails with
        # ResourceInUseException if the managed add-on exists: set install_pod_identity_agent false).
        return aws.eks.Addon(
            f"{self._name}-addon-{POD_IDENTITY_AGENT}",
            cluster_name=self.cluster_name,
            addon_name=POD_IDENTITY_AGENT,
            addon_version=args.pod_identity_agent_version,
            resolve_conflicts_on_create="NONE",
            resolve_conflicts_on_update="OVERWRITE",
            tags=dict(args.tags),
            opts=self._child,
        )
