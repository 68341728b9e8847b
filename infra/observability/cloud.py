"""Alerting's AWS side (cloud layer): the platform's alert topic (SNS, encrypted with a key of its own, TLS only)
and Alertmanager's Pod Identity role (publish to that topic, read the webhook URL's secret). Alertmanager itself
is in kube-prometheus-stack, in the cluster layer (`infra.observability.component.Monitoring`).

The topic has its own KMS key rather than the lake's: CloudWatch alarms may use it to publish, and that grant has
no business on the key of the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from mlplatform.infra.aws_account import aws_account
from mlplatform.infra.iam_documents import secret_arn_pattern
from mlplatform.infra.k8s_resources import pod_identity_role
from mlplatform.infra.observability import alerting
from mlplatform.infra.observability.documents import ALERTMANAGER_SERVICE_ACCOUNT, NAMESPACE

COMPONENT_TYPE = "mlplatform:observability:AlertingCloud"


@dataclass(frozen=True, kw_only=True)
class AlertingCloudArgs:
    cluster_name: pulumi.Input[str]
    """The EKS cluster's name, an Output of the cluster (the Pod Identity association names it)."""
    label: str
    """The cluster's configured name: the topic is `<label>-alerts`, its key `alias/<label>-alerts-key`."""
    region: str
    topic: bool
    """Create the alert topic (some severity goes to SNS)."""
    webhook_secret: str | None = None
    """Secrets Manager secret holding the webhook URL, which Alertmanager's role may read."""
    protect: bool = False
    """protect/retainOnDelete on the topic's key (KMS keys are protected in prod)."""
    cost_tags: Mapping[str, str] = field(default_factory=dict)


class AlertingCloud(pulumi.ComponentResource):
    """Needs the `aws` provider in `opts.providers`."""

    topic_arn: pulumi.Output[str] | None
    """The alert topic: subscribe to it (email, HTTPS, SQS, Lambda, ...)."""
    key_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: AlertingCloudArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        account = aws_account(self)
        self._partition, self._account_id = account.partition, account.account_id
        self.topic_arn = self.key_arn = None
        if args.topic:
            self._create_topic()
        if args.topic or args.webhook_secret:
            self._create_identity()
        self.register_outputs({"topic_arn": self.topic_arn, "key_arn": self.key_arn})

    def _create_topic(self) -> None:
        name, args = self._name, self._args
        tags = dict(args.cost_tags)
        key = aws.kms.Key(
            f"{name}-topic-key",
            description=f"{args.label}: alert topic encryption (SNS)",
            enable_key_rotation=True,
            rotation_period_in_days=365,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(self._partition, self._account_id).apply(
                lambda v: alerting.topic_key_policy(v[0], v[1], args.region)
            ),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect),
        )
        aws.kms.Alias(
            f"{name}-topic-key-alias", name=f"alias/{args.label}-alerts-key", target_key_id=key.key_id, opts=self._child
        )
        topic = aws.sns.Topic(
            f"{name}-topic",
            name=f"{args.label}-alerts",
            # The sender's name in emails; from the cluster's Output, since it names the cluster.
            display_name=pulumi.Output.concat(args.cluster_name, " alerts"),
            kms_master_key_id=key.arn,
            signature_version=2,  # SHA256-signed deliveries to HTTPS subscribers
            tags=tags,
            opts=self._child,
        )
        aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, self._partition, self._account_id).apply(
                lambda v: alerting.topic_policy(v[0], v[1], v[2], args.region)
            ),
            opts=self._child,
        )
        self.topic_arn = topic.arn
        self.key_arn = key.arn

    def _create_identity(self) -> None:
        name, args = self._name, self._args
        secret = args.webhook_secret
        self.pod_identity = pod_identity_role(
            f"{name}-alertmanager",
            cluster_name=args.cluster_name,
            namespace=NAMESPACE,
            service_account=ALERTMANAGER_SERVICE_ACCOUNT,
            description=f"{args.label}: Alertmanager (Pod Identity): publish to the alert topic, read the webhook URL",
            policy=pulumi.Output.all(self._partition, self._account_id, self.topic_arn or "", self.key_arn or "").apply(
                lambda v: alerting.alertmanager_policy(
                    partition=v[0],
                    region=args.region,
                    topic_arn=v[2] or None,
                    key_arn=v[3] or None,
                    webhook_secret_arn=secret_arn_pattern(v[0], args.region, v[1], secret) if secret else None,
                )
            ),
            tags=args.cost_tags,
            opts=self._child,
        )
