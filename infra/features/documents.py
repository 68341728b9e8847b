"""Pure builders for the feature store (Feast): names, `feature_store.yaml`, the two roles' IAM policies and the
Kubernetes manifests. No resources.

Where Feast keeps what (Feast 0.67.0, the version images/feast/requirements.txt pins):
- **Registry**: one file, `s3://<features bucket>/feast/<project>/registry.db` (`registry_type: file`). Readers
  call HeadBucket, HeadObject and GetObject on it; `feast apply` and materialization also put it back.
- **Offline store**: the `file` offline store over Parquet files under `feast/<project>/sources/` of the same
  bucket (the `FileSource`s of the project point there). Chosen over a Glue/Athena catalog: no crawler, database,
  workgroup or query-results bucket to run and secure, nothing billed per query, and the point-in-time join runs
  in the materialization pod on the same files the training pipelines write. A Glue catalog pays off once several
  engines query the features with SQL; the lake's `features` zone stays readable by one later.
- **Online store**: DynamoDB, one table per feature view, `<stack>.<project>.<view>` (hash key `entity_id`), on
  demand. The platform creates the tables (the lake key, tags, deletion protection and point-in-time recovery in
  prod); `feast apply` finds them (DescribeTable) and creates none. Chosen over ElastiCache Redis by idle cost: an
  on-demand table costs nothing idle but its storage, where the smallest Redis node (cache.t4g.micro) runs
  about $12 a month and a Multi-AZ pair of cache.r7g.large about $320; per million reads DynamoDB bills $0.125 for
  eventually consistent reads of items up to 8 KB (docs/components.md, "Feature store"). Redis wins on latency
  and at sustained high read rates (above roughly 100 reads a second all month a node costs less).

The two workloads and their roles:
- **feature server** (`feast serve`, a Deployment): reads the registry and `BatchGetItem`s the tables. Nothing else:
  Feast's server also answers `/push`, `/write-to-online-store` and `/materialize`, unauthenticated, and AWS
  refuses those writes to this role.
- **materializer** (`feast materialize-incremental`, a CronJob; `feast apply` runs with its service account
  too): reads and writes the registry, reads the offline files, `DescribeTable`s and `BatchWriteItem`s the tables.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from mlplatform.infra.iam_documents import S3Grant, s3_access_policy
from mlplatform.infra.k8s_documents import pod_security, restricted_container_security

FEAST_NAMESPACE = "feast"
FEATURE_SERVER_SERVICE_ACCOUNT = "feature-server"
MATERIALIZER_SERVICE_ACCOUNT = "feast-materializer"
FEATURE_SERVER = "feature-server"
FEATURE_SERVER_PORT = 6566
"""`feast serve`'s default port."""
FEATURE_SERVER_METRICS_PORT = 8000
"""Where `feast serve --metrics` exposes Prometheus metrics: Feast 0.67.0 starts its metrics process on 8000
(`feast.metrics.start_metrics_server`'s default, which the CLI does not change), on every interface."""
FEATURE_SERVER_SELECTOR = {"app.kubernetes.io/name": "feature-server"}
MATERIALIZER_SELECTOR = {"app.kubernetes.io/name": "feast-materializer"}
MATERIALIZE_CRONJOB = "feast-materialize"
MATERIALIZE_DEADLINE_SECONDS = 3600
"""A materialization run that has not finished in an hour is stopped (the Job's activeDeadlineSeconds)."""
CONFIG_MAP = "feast-config"
CONFIG_DIR = "/etc/feast"
"""Where the pods find `feature_store.yaml` (the repository path of every `feast` command)."""
HASH_KEY = "entity_id"
"""The DynamoDB online store's partition key (a string: the serialized entity key)."""
FEAST_IN_CLUSTER_URL = f"http://{FEATURE_SERVER}.{FEAST_NAMESPACE}.svc.cluster.local:{FEATURE_SERVER_PORT}"
SERVER_READ_ACTIONS = ("dynamodb:BatchGetItem",)
MATERIALIZER_TABLE_ACTIONS = ("dynamodb:BatchWriteItem", "dynamodb:DescribeTable", "dynamodb:ListTagsOfResource")
"""Materialization writes in batches; `feast apply` describes each table (and reads its tags) and creates none."""


def project_prefix(project: str) -> str:
    return f"feast/{project}/"


def registry_key(project: str) -> str:
    return f"{project_prefix(project)}registry.db"


def sources_prefix(project: str) -> str:
    """Where the project's offline Parquet files live (its `FileSource` paths)."""
    return f"{project_prefix(project)}sources/"


def table_name(label: str, project: str, view: str) -> str:
    """The online table of one feature view: the stack's label first, so two stacks of one account never share."""
    return f"{label}.{project}.{view}"


def table_arn(partition: str, region: str, account: str, name: str) -> str:
    return f"arn:{partition}:dynamodb:{region}:{account}:table/{name}"


@dataclass(frozen=True, kw_only=True)
class FeatureStoreSpec:
    label: str
    """The stack's label (cluster name): the tables' prefix."""
    project: str
    views: tuple[str, ...]
    region: str
    features_bucket: str
    consistent_reads: bool = False

    @property
    def tables(self) -> list[str]:
        return [table_name(self.label, self.project, v) for v in self.views]

    @property
    def registry_uri(self) -> str:
        return f"s3://{self.features_bucket}/{registry_key(self.project)}"

    @property
    def sources_uri(self) -> str:
        return f"s3://{self.features_bucket}/{sources_prefix(self.project)}"


def feature_store_config(spec: FeatureStoreSpec) -> dict[str, Any]:
    """`feature_store.yaml` as a mapping: what every `feast` command of the platform reads."""
    return {
        "project": spec.project,
        "provider": "aws",
        "registry": {"registry_type": "file", "path": spec.registry_uri, "cache_ttl_seconds": 60},
        "offline_store": {"type": "file"},
        "online_store": {
            "type": "dynamodb",
            "region": spec.region,
            "table_name_template": f"{spec.label}.{{project}}.{{table_name}}",
            "consistent_reads": spec.consistent_reads,
            "batch_size": 40,
        },
        "entity_key_serialization_version": 3,
    }


def feature_store_yaml(spec: FeatureStoreSpec) -> str:
    return yaml.safe_dump(feature_store_config(spec), sort_keys=False)


def config_hash(spec: FeatureStoreSpec) -> str:
    """The feature server's pods carry it: a new `feature_store.yaml` rolls them (they read it at start)."""
    return hashlib.sha256(feature_store_yaml(spec).encode()).hexdigest()[:16]


def _table_statement(sid: str, actions: Sequence[str], table_arns: Sequence[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": sorted(table_arns)}


def _dynamodb_key_statement(key_arn: str, region: str) -> dict[str, Any]:
    """The tables are encrypted with the lake key, whose policy delegates to IAM: DynamoDB uses it on the caller's
    behalf (DynamoDB Developer Guide, "Authorizing use of your KMS key"), through DynamoDB only."""
    return {
        "Sid": "UseTheLakeKeyThroughDynamoDB",
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:DescribeKey"],
        "Resource": key_arn,
        "Condition": {"StringEquals": {"kms:ViaService": f"dynamodb.{region}.amazonaws.com"}},
    }


def _with(policy: str, *statements: dict[str, Any]) -> str:
    document = json.loads(policy)
    document["Statement"].extend(statements)
    return json.dumps(document, sort_keys=True)


def server_policy(spec: FeatureStoreSpec, *, features_bucket_arn: str, key_arn: str, table_arns: Sequence[str]) -> str:
    """The feature server: the registry object (HeadBucket first, as Feast's S3 registry store does) and reads of
    the listed tables; no write anywhere."""
    lake = s3_access_policy(
        [S3Grant(features_bucket_arn, registry_key(spec.project), head_bucket=True)], key_arn=key_arn
    )
    return _with(
        lake,
        _table_statement("ReadOnlineFeatures", SERVER_READ_ACTIONS, table_arns),
        _dynamodb_key_statement(key_arn, spec.region),
    )


def materializer_policy(
    spec: FeatureStoreSpec, *, features_bucket_arn: str, key_arn: str, table_arns: Sequence[str]
) -> str:
    """Materialization and `feast apply`: the registry read and written, the project's offline files read, the
    listed tables described and written in batches. No table is created or deleted (the platform owns them)."""
    lake = s3_access_policy(
        [
            S3Grant(features_bucket_arn, registry_key(spec.project), write=True, head_bucket=True),
            S3Grant(features_bucket_arn, sources_prefix(spec.project)),
        ],
        key_arn=key_arn,
    )
    return _with(
        lake,
        _table_statement("WriteOnlineFeatures", MATERIALIZER_TABLE_ACTIONS, table_arns),
        _dynamodb_key_statement(key_arn, spec.region),
    )


def team_grants(project: str, *, producer: bool) -> list[S3Grant]:
    """What a team's role gets in the features bucket (whose ARN replaces the empty `bucket_arn`): the registry and
    the offline files read (a training job's `get_historical_features`; HeadBucket first, as Feast's S3 registry
    store does), the offline files also written by a producer team (its feature pipeline). Never the registry
    written: `feast apply` is the materializer's."""
    return [
        S3Grant("", registry_key(project), head_bucket=True),
        S3Grant("", sources_prefix(project), write=producer),
    ]


# --- Kubernetes ---------------------------------------------------------------------------------------------------


def _env(region: str) -> list[dict[str, str]]:
    return [
        {"name": "AWS_REGION", "value": region},
        {"name": "AWS_DEFAULT_REGION", "value": region},
        {"name": "FEAST_USAGE", "value": "False"},  # no usage telemetry to Feast's servers
        {"name": "HOME", "value": "/tmp"},
    ]


def _volumes() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": CONFIG_MAP}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
    ]
    return mounts, volumes


def config_map(spec: FeatureStoreSpec, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": CONFIG_MAP, "namespace": FEAST_NAMESPACE, "labels": dict(labels)},
        "data": {"feature_store.yaml": feature_store_yaml(spec)},
    }


def server_command() -> list[str]:
    """`--metrics`: request counts and latencies, online reads and each view's freshness (seconds since its latest
    materialization, re-read from the registry every 30 s) on FEATURE_SERVER_METRICS_PORT; the worker processes
    share them through files under /tmp (Prometheus' multiprocess mode)."""
    return [
        "feast",
        "-c",
        CONFIG_DIR,
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        str(FEATURE_SERVER_PORT),
        "--metrics",
    ]


def materialize_command() -> list[str]:
    """Everything new up to now, for every view (Feast remembers each view's last materialized time in the
    registry)."""
    return ["sh", "-c", f'exec feast -c {CONFIG_DIR} materialize-incremental "$(date -u +%Y-%m-%dT%H:%M:%S)"']


def server_deployment(
    *,
    spec: FeatureStoreSpec,
    image: str,
    replicas: int,
    labels: Mapping[str, str],
    node_selector: Mapping[str, str],
    config_hash: str,
) -> dict[str, Any]:
    """The feature server: internal only (ClusterIP), the server role's service account, restricted pods."""
    selector = dict(FEATURE_SERVER_SELECTOR)
    mounts, volumes = _volumes()
    probe = {"httpGet": {"path": "/health", "port": "http"}}
    return {
        "metadata": {"name": FEATURE_SERVER, "namespace": FEAST_NAMESPACE, "labels": {**labels, **selector}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                # A new configuration rolls the pods (the ConfigMap is read at start).
                "metadata": {"labels": {**labels, **selector}, "annotations": {"mlplatform.io/config": config_hash}},
                "spec": {
                    "serviceAccountName": FEATURE_SERVER_SERVICE_ACCOUNT,
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(8737),
                    "nodeSelector": dict(node_selector),
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "topology.kubernetes.io/zone",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": selector},
                        }
                    ],
                    "containers": [
                        {
                            "name": "feature-server",
                            "image": image,
                            "command": server_command(),
                            "env": _env(spec.region),
                            "ports": [
                                {"name": "http", "containerPort": FEATURE_SERVER_PORT},
                                {"name": "metrics", "containerPort": FEATURE_SERVER_METRICS_PORT},
                            ],
                            "resources": {
                                "requests": {"cpu": "250m", "memory": "512Mi"},
                                "limits": {"memory": "1Gi"},
                            },
                            "readinessProbe": {**probe, "periodSeconds": 10, "failureThreshold": 3},
                            "livenessProbe": {**probe, "periodSeconds": 20, "failureThreshold": 6},
                            "startupProbe": {**probe, "periodSeconds": 5, "failureThreshold": 60},
                            "securityContext": restricted_container_security(),
                            "volumeMounts": mounts,
                        }
                    ],
                    "volumes": volumes,
                },
            },
        },
    }


def materialize_cronjob(
    *,
    spec: FeatureStoreSpec,
    image: str,
    schedule: str,
    labels: Mapping[str, str],
    node_selector: Mapping[str, str],
) -> dict[str, Any]:
    """Materialization on a schedule: one run at a time, a run that overruns an hour is stopped."""
    selector = dict(MATERIALIZER_SELECTOR)
    mounts, volumes = _volumes()
    return {
        "metadata": {"name": MATERIALIZE_CRONJOB, "namespace": FEAST_NAMESPACE, "labels": {**labels, **selector}},
        "spec": {
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": {**labels, **selector}},
                "spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": MATERIALIZE_DEADLINE_SECONDS,
                    "ttlSecondsAfterFinished": 86400,
                    "template": {
                        "metadata": {"labels": {**labels, **selector}},
                        "spec": {
                            "serviceAccountName": MATERIALIZER_SERVICE_ACCOUNT,
                            "automountServiceAccountToken": False,
                            "restartPolicy": "Never",
                            "securityContext": pod_security(8737),
                            "nodeSelector": dict(node_selector),
                            "containers": [
                                {
                                    "name": "materialize",
                                    "image": image,
                                    "command": materialize_command(),
                                    "env": _env(spec.region),
                                    "resources": {
                                        "requests": {"cpu": "500m", "memory": "1Gi"},
                                        "limits": {"memory": "4Gi"},
                                    },
                                    "securityContext": restricted_container_security(),
                                    "volumeMounts": mounts,
                                }
                            ],
                            "volumes": volumes,
                        },
                    },
                },
            },
        },
    }
