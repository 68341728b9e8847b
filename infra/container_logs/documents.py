"""Pure builders for container logs: the log group layout, Fluent Bit's writer policy, its configuration (Fluent
Bit's YAML format) and the values of the `fluent-bit` chart. No resources, no I/O.

Layout: one log group for every namespace that is not a team's (`/<cluster>/containers/platform`) and one per team
namespace (`/<cluster>/containers/team-<name>`), so the number of groups is known from config (groups are made by
the cloud layer, never inside an apply) and a team's logs can be granted to that team alone. Streams are
`<namespace>.<pod>.<container>`.

Fluent Bit 5.1.1 (chart `fluent-bit` 0.58.1): a `tail` input on /var/log/containers (containerd's CRI format), the
`kubernetes` filter, a `rewrite_tag` filter that re-tags the records of team namespaces `tenant.<namespace>`, and one
`cloudwatch_logs` output per group with `auto_create_group: false`. The plugin has no KMS option (it creates groups
with only a name), so the cloud layer creates every group, KMS-encrypted, with retention and cost tags, and the
writer may only create streams in them and put events. Every option name used here is checked against the
plugin documentation of 5.1.1 (tests/data/fluent-bit/options.json).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

NAMESPACE = "logging"
RELEASE = "fluent-bit"
# Set explicitly in the values (the chart would derive the same from the release name): the Pod Identity
# association names it.
SERVICE_ACCOUNT = "fluent-bit"
PLATFORM = "platform"
"""The destination of every namespace that is not a team's (kube-system, monitoring, serving, ...)."""

# Where chart 0.58.1 mounts its ConfigMap (templates/_pod.tpl), and the file of `config.extraFiles` we run: the
# chart itself renders only the classic format (fluent-bit.conf), so its `args` point Fluent Bit at ours. Fluent
# Bit picks the YAML parser by the `.yaml` extension (src/config_format/flb_config_format.c @ v5.1.1).
CONFIG_MOUNT = "/fluent-bit/etc/conf"
CONFIG_FILE = "fluent-bit.yaml"
STATE_DIR = "/var/fluent-bit/state"
"""Host directory of the tail database (file offsets survive a restart of the pod)."""
HTTP_PORT = 2020
"""Fluent Bit's HTTP server: the chart's probes (`/`, `/api/v2/health`) and metrics."""

KUBE_TAG_PREFIX = "kube.var.log.containers."
"""The tail tag `kube.*` expands to this plus the file name; the kubernetes filter strips it (its default)."""
ROUTED_TAG_PREFIX = "tenant."
"""Records of a team namespace are re-emitted as `tenant.<namespace>`."""
STREAM_TEMPLATE = "$kubernetes['namespace_name'].$kubernetes['pod_name'].$kubernetes['container_name']"
FALLBACK_STREAM_PREFIX = "from-tag."
"""Stream of a record without Kubernetes metadata (metadata lookup failed): this prefix plus its tail tag."""

WRITER_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
"""All the cloudwatch_logs plugin calls with `auto_create_group: false` (plugins/out_cloudwatch_logs/cloudwatch_api.c
@ v5.1.1: CreateLogGroup and PutRetentionPolicy only when it creates groups; no Describe* call)."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True, kw_only=True)
class LogDestination:
    """One log group: the platform's, or one team namespace's."""

    key: str
    """`platform`, or the team's namespace (`team-research`)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of this group on top of the stack's cost tags (a team's group carries the team and its cost center)."""

    @property
    def is_team(self) -> bool:
        return self.key != PLATFORM


def log_group_name(cluster_name: str, key: str) -> str:
    """`/mlp-prod/containers/platform`, `/mlp-prod/containers/team-research`."""
    return f"/{cluster_name}/containers/{key}"


def writer_policy(group_arns: Sequence[str]) -> str:
    """Fluent Bit's role: create streams in, and put events into, exactly these groups (ARNs without `:*`).

    The Service Authorization Reference gives both actions the log-stream resource
    (`...:log-group:<name>:log-stream:<stream>`); the group's own ARN is listed too, as AWS's examples for
    CreateLogStream grant it, and it names nothing outside the group."""
    if not group_arns:
        raise ValueError("the writer policy needs at least one log group")
    resources = [arn for group in group_arns for arn in (group, f"{group}:log-stream:*")]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "WriteContainerLogs",
                    "Effect": "Allow",
                    "Action": list(WRITER_ACTIONS),
                    "Resource": resources,
                }
            ],
        },
        sort_keys=True,
    )


def _output(alias: str, match: str, region: str, group: str) -> dict[str, Any]:
    return {
        "name": "cloudwatch_logs",
        "alias": alias,
        "match": match,
        "region": region,  # required: pods get no region from Pod Identity and cannot reach IMDS
        "log_group_name": group,
        "log_stream_template": STREAM_TEMPLATE,
        "log_stream_prefix": FALLBACK_STREAM_PREFIX,
        # The group exists (cloud layer, KMS, retention, tags); creating one would make it without any of those.
        "auto_create_group": False,
        # Scheduler backoff (base 5 s, cap 2000 s): about 75 minutes of retries, then the chunk is dropped
        # rather than stalling every other group behind it.
        "retry_limit": 10,
    }


def fluent_bit_config(*, region: str, log_groups: Mapping[str, str], team_namespaces: Sequence[str]) -> dict[str, Any]:
    """Fluent Bit's configuration (YAML format, as a document): every container's log lines on the node, enriched
    with Kubernetes metadata, to the platform's group or, for a team namespace, to that team's group.

    `log_groups` maps `platform` and each team namespace to its group's name (the cloud layer's output)."""
    missing = [key for key in (PLATFORM, *team_namespaces) if key not in log_groups]
    if missing:
        raise ValueError(
            f"no log group for {', '.join(missing)} in the cloud layer's output container_log_groups: run "
            "`pulumi up` for the cloud layer with this version of the program and config first"
        )
    for namespace in team_namespaces:
        if not _DNS_LABEL.match(namespace):  # goes into a regular expression unescaped
            raise ValueError(f"{namespace!r} is not a Kubernetes namespace name")
    filters: list[dict[str, Any]] = [
        {
            "name": "kubernetes",
            "match": "kube.*",
            "kube_tag_prefix": KUBE_TAG_PREFIX,
            "merge_log": True,  # a JSON log line becomes fields of the record
            "keep_log": False,
            "labels": True,
            "annotations": False,  # large (last-applied-configuration) and not needed to find a pod's logs
            "k8s-logging.parser": False,
            "k8s-logging.exclude": False,  # a pod cannot opt out of shipping its logs
            "buffer_size": 0,  # no limit on the pod's API response: a large pod spec would lose its metadata
        }
    ]
    outputs = [_output(PLATFORM, "kube.*", region, log_groups[PLATFORM])]
    if team_namespaces:
        alternatives = "|".join(team_namespaces)
        filters.append(
            {
                "name": "rewrite_tag",
                "match": "kube.*",
                # KEY REGEX NEW_TAG KEEP: a team's record is re-emitted as tenant.<namespace> and the original
                # dropped, so it reaches its team's output only. Re-emitted records enter the pipeline again; the
                # filters above match kube.* only and leave them alone.
                "rule": f"$kubernetes['namespace_name'] ^({alternatives})$ {ROUTED_TAG_PREFIX}$1 false",
                "emitter_name": "tenant-logs",
            }
        )
        outputs += [
            _output(namespace, f"{ROUTED_TAG_PREFIX}{namespace}", region, log_groups[namespace])
            for namespace in team_namespaces
        ]
    return {
        "service": {
            "flush": 5,
            "log_level": "info",
            "http_server": True,
            "http_listen": "0.0.0.0",
            "http_port": HTTP_PORT,
            "health_check": True,  # the chart's readiness probe reads /api/v2/health
        },
        "pipeline": {
            "inputs": [
                {
                    "name": "tail",
                    "tag": "kube.*",
                    "path": "/var/log/containers/*.log",
                    "multiline.parser": "cri",  # containerd's log format; joins lines it split (partial flag P)
                    "db": f"{STATE_DIR}/containers.db",
                    "db.locking": True,
                    "mem_buf_limit": "16MB",  # pause reading past this, resume when flushed (nothing lost)
                    "skip_long_lines": True,
                    "refresh_interval": 10,  # new pods' files found within 10 s
                }
            ],
            "filters": filters,
            "outputs": outputs,
        },
    }


def render_config(config: Mapping[str, Any]) -> str:
    """The configuration as the YAML file Fluent Bit reads."""
    return yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=False, width=1000)


def fluent_bit_values(*, config_text: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """Values of the `fluent-bit` chart 0.58.1 (keys as in its values.yaml): a DaemonSet on every node, GPU nodes
    included, running `config_text` (mounted through `config.extraFiles`, which the chart passes through Helm's
    `tpl`: the text must hold no `{{`)."""
    if "{{" in config_text:
        raise ValueError("the Fluent Bit configuration must not contain `{{` (the chart renders it as a template)")
    unused = "# Not read: this release runs fluent-bit.yaml (see the container's --config).\n"
    return {
        "kind": "DaemonSet",
        "fullnameOverride": RELEASE,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "rbac": {"create": True, "nodeAccess": False, "eventsAccess": False},
        "testFramework": {"enabled": False},  # `helm test` pod with an unpinned busybox:latest
        "labels": dict(labels),
        "podLabels": dict(labels),
        # Every node that runs pods: GPU nodes carry the nvidia.com/gpu NoSchedule taint, and a pool added with a
        # taint of its own must not lose its logs.
        "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
        "nodeSelector": {},
        "priorityClassName": "system-node-critical",  # scheduled even on a full node
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        # Root (the image's user) reads the root-owned 0640 log files as their owner; no capability is needed.
        "podSecurityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "securityContext": {
            "privileged": False,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "metricsPort": HTTP_PORT,
        "command": ["/fluent-bit/bin/fluent-bit"],
        "args": ["--workdir=/fluent-bit/etc", f"--config={CONFIG_MOUNT}/{CONFIG_FILE}"],
        "hotReload": {"enabled": False},  # a config change rolls the pods (the chart's checksum annotation)
        "config": {
            "service": unused,
            "inputs": "",
            "filters": "",
            "outputs": "",
            "extraFiles": {CONFIG_FILE: config_text},
        },
        # Replaces the chart's list: no Docker directory (containerd nodes), no machine-id; the tail database on the
        # host so offsets survive a pod restart.
        "daemonSetVolumes": [
            {"name": "varlog", "hostPath": {"path": "/var/log"}},
            {"name": "state", "hostPath": {"path": STATE_DIR, "type": "DirectoryOrCreate"}},
        ],
        "daemonSetVolumeMounts": [
            {"name": "varlog", "mountPath": "/var/log", "readOnly": True},
            {"name": "state", "mountPath": STATE_DIR},
        ],
    }


def values_for(
    *, region: str, log_groups: Mapping[str, str], team_namespaces: Sequence[str], labels: Mapping[str, str]
) -> dict[str, Any]:
    """The chart values for one cluster, from the cloud layer's log groups."""
    config = fluent_bit_config(region=region, log_groups=log_groups, team_namespaces=team_namespaces)
    return fluent_bit_values(config_text=render_config(config), labels=labels)
