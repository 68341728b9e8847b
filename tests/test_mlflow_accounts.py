"""The MLflow accounts the platform's own workloads sign in with, as planned: every pod that names an account's
Secret finds it in its namespace with the keys it reads, under the username the accounts Job creates; the Job
reaches the server and Secrets Manager and nothing else. The accounts themselves, and what each may do, are run
against the real MLflow server in `tests/test_mlflow_contract.py`
(`test_the_accounts_job_signs_in_the_platforms_workloads_and_teams_share_only_what_they_own`)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from mlplatform.infra.mlops import documents
from mlplatform.infra.mlops.documents import MLFLOW_PORT, MLFLOW_SELECTOR
from mlplatform.infra.pipelines import templates
from mlplatform.infra.serving.documents import REGISTRY_READER_SECRET
from mlplatform.mlp.k8s_schema import object_of
from mlplatform.mlp.planner import Plan
from tests.aws_server import RecordingMoto
from tests.iam_harness import Lake, Workload, judge
from tests.network_policy import Destination, Pod, connection_allowed, plan_namespace_labels, plan_policies

JOB = "kubernetes:batch/v1:Job"
SECRET = "kubernetes:core/v1:Secret"


def _secrets(plan: Plan) -> dict[tuple[str, str], Any]:
    """(namespace, name) -> the planned Secret resource."""
    return {(object_of(r)["metadata"]["namespace"], object_of(r)["metadata"]["name"]): r for r in plan.of_type(SECRET)}


def _secret_refs(container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """env name -> (Secret, key) of a container's secretKeyRefs."""
    return {
        e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }


SIGNED_IN = {"MLFLOW_TRACKING_USERNAME": "username", "MLFLOW_TRACKING_PASSWORD": "password"}


def _job(plan: Plan) -> dict[str, Any]:
    (job,) = [object_of(r) for r in plan.of_type(JOB) if r.name.startswith("mlflow-accounts")]
    return job


def test_dev_keeps_the_reader_and_each_teams_account(plans: dict[str, Plan]) -> None:
    plan = plans["dev"]
    job = _job(plan)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLFLOW_ACCOUNTS"] == "registry-reader,team-research"
    assert container["command"] == ["python", "-c", documents.accounts_source()]
    # Its own identity (its role reads the admin secret), no Kubernetes API token, restricted.
    assert pod["serviceAccountName"] == documents.ACCOUNTS_SERVICE_ACCOUNT and not pod["automountServiceAccountToken"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == documents.ACCOUNTS_SECRET
    planned = _secrets(plan)
    accounts = planned[("mlflow", documents.ACCOUNTS_SECRET)]
    assert accounts.inputs["stringData"] == "[secret]"  # the passwords never reach the plan or its output
    # One generated password per account, each in the accounts Secret and in the one Secret that uses it.
    passwords = {f"mlflow-accounts-{user}-password" for user in ("registry-reader", "team-research")}
    assert set(accounts.references["stringData"]) == passwords
    team = planned[("team-research", documents.TEAM_CREDENTIALS_SECRET)]
    reader = planned[("serving", REGISTRY_READER_SECRET)]
    assert team.references["stringData"] == ["mlflow-accounts-team-research-password"]
    assert reader.references["stringData"] == ["mlflow-accounts-registry-reader-password"]
    # The Job runs once the server answers and the Secret exists.
    assert {"mlflow-deployment", "mlflow-accounts-secret"} <= set(
        next(r for r in plan.of_type(JOB) if r.name.startswith("mlflow-accounts")).options["dependsOn"]
    )


def test_every_pod_that_signs_in_names_a_secret_of_its_own_namespace(plans: dict[str, Plan]) -> None:
    """The workflow steps (train, promote) read the team's Secret, in whichever team namespace they run; the
    team's Ray pods (a training job logs from there) the same; the storage container the reader's."""
    plan = plans["dev"]
    cwts = {
        object_of(r)["metadata"]["name"]: object_of(r)
        for r in plan.of_type("kubernetes:argoproj.io/v1alpha1:ClusterWorkflowTemplate")
    }
    team_ref = {k: (documents.TEAM_CREDENTIALS_SECRET, v) for k, v in SIGNED_IN.items()}
    for name, step in ((templates.TRAIN_TEMPLATE, "train"), (templates.EVALUATE_PROMOTE_TEMPLATE, "promote")):
        (container,) = [t["container"] for t in cwts[name]["spec"]["templates"] if t["name"] in (step, "train")]
        assert _secret_refs(container) == team_ref, name
    # The drift step never talks to MLflow: it gets no credentials.
    (drift,) = [t["container"] for t in cwts[templates.DRIFT_TEMPLATE]["spec"]["templates"] if "container" in t]
    assert _secret_refs(drift) == {}
    promote = cwts[templates.EVALUATE_PROMOTE_TEMPLATE]["spec"]["arguments"]["parameters"]
    assert {p["name"]: p.get("value") for p in promote}["registry-reader"] == documents.REGISTRY_READER_USER

    (ray,) = [object_of(r) for r in plan.of_type("kubernetes:ray.io/v1:RayCluster")]
    assert ray["metadata"]["namespace"] == "team-research"
    pods = [ray["spec"]["headGroupSpec"]["template"], *(g["template"] for g in ray["spec"]["workerGroupSpecs"])]
    for template in pods:
        for container in template["spec"]["containers"]:
            assert _secret_refs(container) == team_ref

    (storage,) = [object_of(r) for r in plan.of_type("kubernetes:serving.kserve.io/v1alpha1:ClusterStorageContainer")]
    assert _secret_refs(storage["spec"]["container"]) == {k: (REGISTRY_READER_SECRET, v) for k, v in SIGNED_IN.items()}

    planned = _secrets(plan)
    (job_container,) = _job(plan)["spec"]["template"]["spec"]["containers"]
    kept = {e["name"]: e["value"] for e in job_container["env"]}["MLFLOW_ACCOUNTS"].split(",")
    for (namespace, name), user in (
        (("team-research", documents.TEAM_CREDENTIALS_SECRET), documents.team_user("research")),
        (("serving", REGISTRY_READER_SECRET), documents.REGISTRY_READER_USER),
    ):
        secret = object_of(planned[(namespace, name)])
        assert secret["type"] == "Opaque" and secret["metadata"]["namespace"] == namespace
        assert user in kept, user


def test_the_accounts_job_reaches_the_server_and_aws_and_nothing_else(plans: dict[str, Plan]) -> None:
    plan = plans["dev"]
    network, cluster = plan_policies(plan)

    def pod(namespace: str, labels: dict[str, str]) -> Pod:
        return Pod(namespace, labels, plan_namespace_labels(plan, namespace))

    job = pod("mlflow", dict(documents.ACCOUNTS_SELECTOR))
    other = pod("mlflow", {"app.kubernetes.io/name": "debug"})
    server = Destination(MLFLOW_PORT, pod=pod("mlflow", dict(MLFLOW_SELECTOR)))
    aws = Destination(443, address="52.94.0.10")
    head = Destination(8265, pod=pod("team-research", {"ray.io/node-type": "head"}))
    assert {
        "job -> MLflow": connection_allowed(network, cluster, job, server),
        "job -> AWS APIs": connection_allowed(network, cluster, job, aws),
        "job -> a team's Ray head": connection_allowed(network, cluster, job, head),
        "another mlflow pod -> MLflow": connection_allowed(network, cluster, other, server),
        "another mlflow pod -> AWS APIs": connection_allowed(network, cluster, other, aws),
    } == {
        "job -> MLflow": True,
        "job -> AWS APIs": True,
        "job -> a team's Ray head": False,
        "another mlflow pod -> MLflow": False,
        "another mlflow pod -> AWS APIs": False,
    }


def test_staging_and_prod_keep_no_account_they_do_not_use(plans: dict[str, Plan]) -> None:
    """Neither runs the workflow templates nor serves from the registry: no account, no Job, no Secret."""
    for stack in ("staging", "prod"):
        assert not [r for r in plans[stack].of_type(JOB) if r.name.startswith("mlflow-accounts")], stack
        assert not [k for k in _secrets(plans[stack]) if k[1] in (documents.ACCOUNTS_SECRET, REGISTRY_READER_SECRET)]


def test_the_job_has_its_own_identity_and_replaces_itself_on_any_change(plans: dict[str, Plan]) -> None:
    """Its own service account (its role reads the admin secret alone), the passwords' generation in its pod
    template (new passwords are a new Job, so MLflow gets them), and a failed Job replaced by the next `pulumi up`."""
    job = _job(plans["dev"])
    assert job["metadata"]["annotations"] == {"pulumi.com/replaceUnready": "true"}
    template = job["spec"]["template"]
    assert template["spec"]["serviceAccountName"] == documents.ACCOUNTS_SERVICE_ACCOUNT
    assert documents.ACCOUNTS_SERVICE_ACCOUNT != documents.MLFLOW_SERVICE_ACCOUNT  # not the server's role
    assert template["metadata"]["annotations"] == {documents.ACCOUNTS_GENERATION_ANNOTATION: "0"}
    # a new generation: new passwords (the RandomPasswords' keepers) and a new Job that sets them, known in a
    # first preview (no computed value in the Job)
    passwords = plans["dev"].of_type("random:index/randomPassword:RandomPassword")
    assert {r.name: r.inputs["keepers"] for r in passwords if r.name.startswith("mlflow-accounts-")} == {
        "mlflow-accounts-registry-reader-password": {"generation": "0"},
        "mlflow-accounts-team-research-password": {"generation": "0"},
    }
    # the team's and the reader's Secrets are made once the Job has set the accounts
    for name in ("team-research-mlflow-credentials", "serving-registry-reader-secret"):
        assert "mlflow-accounts-job" in plans["dev"].get(name).options["dependsOn"], name


def test_the_job_reads_the_admin_secret_and_nothing_else(
    plans: dict[str, Plan], recording_moto: RecordingMoto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Job's AWS side (`admin_credentials`, the accounts program's only AWS call), recorded by a moto server
    and decided by the project's IAM evaluator against the Job's planned role and the secrets' planned ARNs."""
    import boto3

    from mlplatform.infra.mlops.accounts import admin_credentials

    plan = plans["dev"]
    lake = Lake.of(plan)
    workload = Workload.of(plan, "mlflow", documents.ACCOUNTS_SERVICE_ACCOUNT)
    names = {secret.arn: name for name, secret in lake.secrets.items()}
    (container,) = _job(plan)["spec"]["template"]["spec"]["containers"]
    admin_name = names[{e["name"]: e["value"] for e in container["env"]}["MLFLOW_ADMIN_SECRET_ID"]]
    (database_name,) = [n for n in names.values() if n.endswith("/mlflow/database")]
    sm = boto3.client("secretsmanager")
    admin = documents.admin_secret_value(username="admin", password="p" * 20, flask_secret_key="k" * 20)
    admin_arn = sm.create_secret(Name=admin_name, SecretString=admin)["ARN"]
    database_arn = sm.create_secret(Name=database_name, SecretString="{}")["ARN"]
    with recording_moto.log.capture() as recorded:
        assert admin_credentials(admin_arn) == ("admin", "p" * 20)
    judged = judge(recorded, workload, lake)
    assert judged.operations == Counter({"GetSecretValue": 1}) and not judged.denied, judged.explain_denials()
    with recording_moto.log.capture() as recorded:
        sm.get_secret_value(SecretId=database_arn)  # what the server's role may read, the Job's may not
    denied = judge(recorded, workload, lake).denied
    assert [(v.request.action, v.request.resource) for v in denied] == [
        ("secretsmanager:GetSecretValue", lake.secrets[database_name].arn)
    ]
