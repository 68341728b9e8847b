"""Where alerts go, as code: Alertmanager's routes and receivers by severity, the parts of kube-prometheus-stack's
values that deliver them (a webhook URL read from Secrets Manager into an in-memory file by an init container),
and the KMS, SNS and IAM documents of the platform's alert topic. Pure: no resources, no I/O.

Alertmanager v0.34.0 (kube-prometheus-stack 88.5.3) reads the configuration; before that, Prometheus Operator
v0.93.0 parses it with Alertmanager v0.33.1's loader and then strictly into its own types (unknown fields refused).
So the configuration uses only fields all three know (tests/test_alerting.py checks them, and runs amtool).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mlplatform.infra.iam_documents import account_root_statement
from mlplatform.infra.k8s_documents import restricted_container_security

SEVERITIES = ("critical", "warning", "info")
"""Severity labels a receiver can take, in routing order."""
NULL_RECEIVER = "null"
"""Receives what no severity route takes (and the always-firing Watchdog): notifies nobody."""
TEMPLATES = ["/etc/alertmanager/config/*.tmpl"]
"""Where the chart mounts template files (the chart's default, kept)."""
RESOLVE_TIMEOUT = "5m"

WEBHOOK_URL_DIR = "/etc/alertmanager/webhook"
WEBHOOK_URL_FILE = f"{WEBHOOK_URL_DIR}/url"
WEBHOOK_VOLUME = "alert-webhook-url"
WEBHOOK_INIT_CONTAINER = "fetch-webhook-url"
# SNS refuses a Publish whose subject is 100 characters or longer (API reference, Publish: "must be less than 100
# characters long"); Alertmanager v0.34.0 does not shorten it (notify/sns/sns.go).
SNS_SUBJECT_MAX = 99

# The chart's default inhibition rules (kube-prometheus-stack 88.5.3 values.yaml alertmanager.config), kept: a
# critical alert mutes the warning and info alerts of the same alert in the same namespace, and the chart's
# InfoInhibitor rule mutes info alerts while nothing worse fires there. Matchers in the classic syntax, which every
# parser involved (amtool 0.25 included) reads.
INHIBIT_RULES: list[dict[str, Any]] = [
    {
        "source_matchers": ["severity = critical"],
        "target_matchers": ["severity =~ warning|info"],
        "equal": ["namespace", "alertname"],
    },
    {
        "source_matchers": ["severity = warning"],
        "target_matchers": ["severity = info"],
        "equal": ["namespace", "alertname"],
    },
    {
        "source_matchers": ["alertname = InfoInhibitor"],
        "target_matchers": ["severity = info"],
        "equal": ["namespace"],
    },
    {"target_matchers": ["alertname = InfoInhibitor"]},
]


SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
"""Alertmanager's own projected token (kubelet rotates it; Alertmanager reads credentials_file on each request)."""
RETRAIN_REPEAT = "24h"
"""A drift alert that keeps firing asks for one retrain a day, not one per notification interval."""


@dataclass(frozen=True, kw_only=True)
class RetrainRoute:
    """A model whose drift alert submits its team's retraining: the Argo server's event URL for the team."""

    model: str
    team: str
    url: str

    @property
    def receiver(self) -> str:
        return f"retrain-{self.team}-{self.model}"


@dataclass(frozen=True, kw_only=True)
class AlertingSpec:
    """Receivers and grouping from `observability.alerting`. A receiver with no severities is off."""

    label: str
    """The cluster's name (e.g. mlp-prod): starts every SNS subject, so a subscriber knows the environment."""
    region: str
    """Region of the SNS topic (Alertmanager signs its requests for it; pods cannot read it from IMDS)."""
    sns_severities: tuple[str, ...]
    sns_send_resolved: bool
    webhook_secret: str | None
    """Secrets Manager secret whose value is the webhook's https:// URL."""
    webhook_severities: tuple[str, ...]
    webhook_send_resolved: bool
    group_by: tuple[str, ...]
    group_wait: str
    group_interval: str
    repeat_interval: str
    retrain_routes: tuple[RetrainRoute, ...] = ()
    """Drift alerts (`action="retrain"`) of these models go to these Argo event endpoints."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.sns_severities + self.webhook_severities) - set(SEVERITIES))
        if unknown:
            raise ValueError(f"unknown severities {unknown}; allowed: {', '.join(SEVERITIES)}")
        if self.webhook_severities and not self.webhook_secret:
            raise ValueError("webhook severities need webhook_secret")

    @property
    def uses_sns(self) -> bool:
        return bool(self.sns_severities)

    @property
    def uses_webhook(self) -> bool:
        return bool(self.webhook_severities)

    @property
    def has_receivers(self) -> bool:
        return self.uses_sns or self.uses_webhook


def sns_subject(label: str, severity: str) -> str:
    """`[mlp-prod critical] FIRING:2 GpuXidError ...`: environment, severity, status and the group's labels, cut to
    what SNS accepts. A Go template (Alertmanager's functions `toUpper`, `join` and `reReplaceAll` exist since 0.25).
    """
    return (
        '{{ $count := "" }}{{ if eq .Status "firing" }}{{ $count = printf ":%d" (len .Alerts.Firing) }}{{ end }}'
        f'{{{{ reReplaceAll "(?s)^(.{{0,{SNS_SUBJECT_MAX}}}).*$" "$1" '
        f'(printf "[%s %s] %s%s %s" "{label}" "{severity}" (toUpper .Status) $count '
        '(join " " .GroupLabels.SortedPairs.Values)) }}'
    )


def _sns_config(spec: AlertingSpec, severity: str, topic_arn: str) -> dict[str, Any]:
    return {
        "topic_arn": topic_arn,
        # Pod Identity gives credentials but no region, and pods cannot reach IMDS (hop limit 1).
        "sigv4": {"region": spec.region},
        "subject": sns_subject(spec.label, severity),
        # Message attributes let a subscription filter (e.g. page on critical only): {"severity": ["critical"]}.
        "attributes": {"severity": severity, "cluster": spec.label},
        "send_resolved": spec.sns_send_resolved,
    }


def alertmanager_config(spec: AlertingSpec, *, topic_arn: str | None) -> dict[str, Any]:
    """The whole Alertmanager configuration (chart value `alertmanager.config`).

    One route per severity that has a destination, to a receiver named after the severity that holds each of its
    destinations (the SNS topic, the webhook); the rest (and the always-firing Watchdog) goes to `null`. Every
    top-level key of the chart's default is set, because Helm merges these values over that default key by key.
    """
    if spec.uses_sns and not topic_arn:
        raise ValueError("SNS severities need the topic's ARN")
    routes: list[dict[str, Any]] = [{"receiver": NULL_RECEIVER, "matchers": ['alertname = "Watchdog"']}]
    receivers: list[dict[str, Any]] = [{"name": NULL_RECEIVER}]
    for retrain in spec.retrain_routes:
        # First, and `continue`: the drift alert still reaches the warning receivers below.
        routes.append(
            {
                "receiver": retrain.receiver,
                "matchers": ['action = "retrain"', f'model = "{retrain.model}"'],
                "group_by": ["alertname", "model"],
                "repeat_interval": RETRAIN_REPEAT,
                "continue": True,
            }
        )
        receivers.append(
            {
                "name": retrain.receiver,
                "webhook_configs": [
                    {
                        "url": retrain.url,
                        "send_resolved": False,
                        "http_config": {"authorization": {"type": "Bearer", "credentials_file": SERVICE_ACCOUNT_TOKEN}},
                    }
                ],
            }
        )
    for severity in SEVERITIES:
        receiver: dict[str, Any] = {"name": severity}
        if severity in spec.sns_severities:
            assert topic_arn is not None
            receiver["sns_configs"] = [_sns_config(spec, severity, topic_arn)]
        if severity in spec.webhook_severities:
            receiver["webhook_configs"] = [{"url_file": WEBHOOK_URL_FILE, "send_resolved": spec.webhook_send_resolved}]
        if len(receiver) > 1:
            receivers.append(receiver)
            routes.append({"receiver": severity, "matchers": [f'severity = "{severity}"']})
    return {
        "global": {"resolve_timeout": RESOLVE_TIMEOUT},
        "route": {
            "receiver": NULL_RECEIVER,
            "group_by": list(spec.group_by),
            "group_wait": spec.group_wait,
            "group_interval": spec.group_interval,
            "repeat_interval": spec.repeat_interval,
            "routes": routes,
        },
        "inhibit_rules": [dict(rule) for rule in INHIBIT_RULES],
        "receivers": receivers,
        "templates": list(TEMPLATES),
    }


def webhook_url_script() -> str:
    """The init container's shell: write the secret's value to the URL file, on an in-memory volume, never to the
    log. It exits 0 even when it cannot (no secret, no permission, not https): Alertmanager then starts without the
    file, and only the webhook fails (its error in Alertmanager's log; AlertmanagerFailedToSendAlerts fires and goes
    to the other receivers), instead of the pod crash-looping and every receiver going silent."""
    return (
        'umask 077; tmp="$WEBHOOK_URL_FILE.part"; '
        'if ! aws secretsmanager get-secret-value --secret-id "$WEBHOOK_SECRET_ID" --query SecretString '
        '--output text > "$tmp"; then '
        'echo "cannot read secret $WEBHOOK_SECRET_ID: the webhook receiver stays off" >&2; rm -f "$tmp"; exit 0; fi; '
        'case "$(cat "$tmp")" in https://*) mv "$tmp" "$WEBHOOK_URL_FILE" ;; '
        '*) echo "secret $WEBHOOK_SECRET_ID does not hold an https:// URL: the webhook receiver stays off" >&2; '
        'rm -f "$tmp" ;; esac'
    )


def webhook_url_fetcher(*, secret: str, region: str, aws_cli_image: str) -> dict[str, Any]:
    """`initContainers`, `volumes` and `volumeMounts` for `alertmanager.alertmanagerSpec`: the URL file, read only
    by Alertmanager. The init container runs with Alertmanager's service account (its Pod Identity role may read
    only this secret) and the pod's non-root user, so Alertmanager can read the file it writes."""
    container = {
        "name": WEBHOOK_INIT_CONTAINER,
        "image": aws_cli_image,
        "command": ["/bin/sh", "-c", webhook_url_script()],
        "env": [
            {"name": "AWS_REGION", "value": region},
            {"name": "HOME", "value": "/tmp"},
            {"name": "WEBHOOK_SECRET_ID", "value": secret},
            {"name": "WEBHOOK_URL_FILE", "value": WEBHOOK_URL_FILE},
        ],
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": restricted_container_security(),
        "volumeMounts": [
            {"name": WEBHOOK_VOLUME, "mountPath": WEBHOOK_URL_DIR},
            {"name": f"{WEBHOOK_INIT_CONTAINER}-tmp", "mountPath": "/tmp"},
        ],
    }
    return {
        "initContainers": [container],
        "volumes": [
            {"name": WEBHOOK_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
            {"name": f"{WEBHOOK_INIT_CONTAINER}-tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        ],
        "volumeMounts": [{"name": WEBHOOK_VOLUME, "mountPath": WEBHOOK_URL_DIR, "readOnly": True}],
    }


# --- the topic's documents (cloud layer) ------------------------------------------------------------------------


def _dns_suffix(partition: str) -> str:
    return "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"


def _alarms_condition(partition: str, account_id: str, region: str) -> dict[str, Any]:
    # CloudWatch acts only for this account's alarms in this region (confused deputy).
    return {
        "StringEquals": {"aws:SourceAccount": account_id},
        "ArnLike": {"aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:*"},
    }


def topic_key_policy(partition: str, account_id: str, region: str) -> str:
    """The topic's KMS key: the account administers and uses it through IAM (Alertmanager's role gets exactly what
    publishing needs), and CloudWatch alarms of this account may publish to the encrypted topic (SNS developer
    guide, "Enable compatibility between event sources from AWS services and encrypted topics")."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                account_root_statement(partition, account_id),
                {
                    "Sid": "CloudWatchAlarmsPublishToTheTopic",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": "*",
                    "Condition": _alarms_condition(partition, account_id, region),
                },
            ],
        },
        sort_keys=True,
    )


def topic_policy(topic_arn: str, partition: str, account_id: str, region: str) -> str:
    """TLS only (SNS developer guide, security best practices: "Enforce encryption of data in transit"), and this
    account's CloudWatch alarms may publish. The account's own principals need IAM permissions (same account)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sns:*",
                    "Resource": topic_arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
                {
                    "Sid": "CloudWatchAlarmsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": _alarms_condition(partition, account_id, region),
                },
            ],
        },
        sort_keys=True,
    )


def alertmanager_policy(
    *,
    partition: str,
    region: str,
    topic_arn: str | None,
    key_arn: str | None,
    webhook_secret_arn: str | None,
) -> str:
    """Alertmanager's Pod Identity role: publish to the topic (SSE topics also need GenerateDataKey and Decrypt on
    the topic's key, and only through SNS), and read the webhook secret. Nothing else."""
    statements: list[dict[str, Any]] = []
    if topic_arn:
        if not key_arn:
            raise ValueError("publishing to the encrypted topic needs its key's ARN")
        statements += [
            {"Sid": "PublishAlerts", "Effect": "Allow", "Action": "sns:Publish", "Resource": topic_arn},
            {
                "Sid": "UseTheTopicKeyThroughSns",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": key_arn,
                "Condition": {"StringEquals": {"kms:ViaService": f"sns.{region}.{_dns_suffix(partition)}"}},
            },
        ]
    if webhook_secret_arn:
        statements.append(
            {
                "Sid": "ReadTheWebhookUrl",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": webhook_secret_arn,
            }
        )
    if not statements:
        raise ValueError("Alertmanager needs a role only for a topic or a webhook secret")
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)
