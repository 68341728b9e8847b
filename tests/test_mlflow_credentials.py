"""MLflow's database credentials and TLS, with real servers: PostgreSQL 15 (TLS with a CA made here), moto for
Secrets Manager, and a real MLflow server started with the platform's launcher.

- The password never sits in the server's URI: the launcher's hook (`documents.MLFLOW_DB_HOOK`, the server's
  `sitecustomize`) gives each new connection the password from the secret the connection secret names (the
  RDS-managed master secret in AWS). A rotation (the role's password changed, the secret updated) followed by the
  loss of every pooled connection must leave MLflow serving.
- verify-full: the right CA and the right host name connect; another CA, another host name or no CA file fail.
- The plans: RDS manages the master password (no password input, no generated password), the schedule is
  explicit, the role reads the managed secret and decrypts it, prod keeps its log groups and secrets on destroy.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from mlplatform.infra.mlops import documents
from mlplatform.infra.mlops.documents import MlflowServer
from mlplatform.mlp.planner import Plan
from tests.aws_server import free_port
from tests.k8s_schema import object_of
from tests.servers import VENV_BIN, Postgres, postgres_bin, postgres_server, start, stop, wait_for_http

REGION = "us-east-1"
BUCKET = "mlp-test-artifacts"
needs_postgres = pytest.mark.skipif(
    postgres_bin() is None and not os.environ.get("MLP_REQUIRE_POSTGRES"), reason="no PostgreSQL on this machine"
)


# --- a test CA and a PostgreSQL that speaks TLS ------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    other_ca: Path
    cert: Path
    key: Path


def _name(common_name: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_pki(directory: Path, server_name: str = "localhost") -> Pki:
    """A CA, a server certificate it signs for `server_name` only (no IP address), and an unrelated CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ca_cert, ca_key = _ca("mlp test database CA")
    other_cert, _ = _ca("mlp test database CA")  # same name, other key: only the signature tells them apart
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(server_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(server_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    pki = Pki(
        ca=directory / "ca.pem",
        other_ca=directory / "other-ca.pem",
        cert=directory / "server.crt",
        key=directory / "server.key",
    )
    pki.ca.write_bytes(ca_cert.public_bytes(pem))
    pki.other_ca.write_bytes(other_cert.public_bytes(pem))
    pki.cert.write_bytes(cert.public_bytes(pem))
    pki.key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return pki


def _sql(postgres: Postgres, *statements: str, dbname: str = "postgres") -> list[Any]:
    conn: Any = postgres.connect(dbname)
    conn.autocommit = True
    results = []
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
            results.append(cur.fetchall() if cur.description else None)
    conn.close()
    return results


@contextlib.contextmanager
def tls_postgres() -> Iterator[tuple[Postgres, Pki]]:
    """PostgreSQL 15 with TLS on (its certificate: `localhost`, signed by a CA made here), a `mlflow` role and
    database; the role's password is set by the test."""
    with postgres_server() as postgres:
        if postgres is None:
            pytest.fail("no PostgreSQL on this machine (MLP_REQUIRE_POSTGRES)")
        workdir = Path(tempfile.mkdtemp(prefix="mlp-pki-"))
        try:
            pki = make_pki(workdir)
            data_dir = _sql(postgres, "SHOW data_directory")[0][0][0]
            owner = Path(data_dir).stat()
            workdir.chmod(0o755)
            for path in (pki.cert, pki.key):
                os.chown(path, owner.st_uid, owner.st_gid)
            pki.key.chmod(0o600)
            _sql(
                postgres,
                f"ALTER SYSTEM SET ssl_cert_file = '{pki.cert}'",
                f"ALTER SYSTEM SET ssl_key_file = '{pki.key}'",
                "ALTER SYSTEM SET ssl = on",
                "SELECT pg_reload_conf()",
            )
            _sql(postgres, "CREATE ROLE mlflow LOGIN", "CREATE DATABASE mlflow OWNER mlflow")
            yield postgres, pki
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def _set_password(postgres: Postgres, password: str) -> None:
    conn: Any = postgres.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("ALTER ROLE mlflow PASSWORD %s", (password,))
    conn.close()


def _master_secret(password: str) -> str:
    """The RDS-managed master secret's value (RDS writes `username` and `password`)."""
    return json.dumps({"username": "mlflow", "password": password})


def _secrets(postgres: Postgres, password: str, host: str = "localhost", sslmode: str | None = "verify-full") -> str:
    """The managed secret and the connection secret that names it, in moto; returns the connection secret's ARN."""
    sm = boto3.client("secretsmanager", region_name=REGION)
    master = sm.create_secret(Name="rds!db-0123456789abcdef", SecretString=_master_secret(password))["ARN"]
    value = json.loads(
        documents.db_secret_value(
            username="mlflow", host=host, port=postgres.port, dbname="mlflow", password_secret_id=master
        )
    )
    if sslmode is None:
        del value["sslmode"]  # the launcher's default
    else:
        value["sslmode"] = sslmode
    return str(sm.create_secret(Name="mlp-test/mlflow/database", SecretString=json.dumps(value))["ARN"])


def _launcher_env(tmp_path: Path, moto_endpoint: str, server: MlflowServer) -> dict[str, str]:
    return {
        **documents.mlflow_env(server),
        "HOME": str(tmp_path),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_DB_HOOK_DIR": str(tmp_path / "hook"),  # the pod's: /tmp/mlflow-db-hook on its in-memory volume
        "AWS_ENDPOINT_URL": moto_endpoint,
        "MLFLOW_S3_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


# --- the launcher's URI and hook, without MLflow: what a connection made like MLflow's gets -----------------------

_FAKE_MLFLOW = """#!{python}
import json, os, sys
with open(os.environ["MLP_DUMP"], "w") as f:
    json.dump({{"argv": sys.argv, "env": dict(os.environ)}}, f)
"""

_CONNECT = """
import json, os, sqlalchemy
engine = sqlalchemy.create_engine(os.environ["MLFLOW_BACKEND_STORE_URI"], pool_pre_ping=True)
try:
    with engine.connect() as c:
        row = c.exec_driver_sql("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").one()
        print(json.dumps({"ok": True, "ssl": row[0], "tls": row[1]}))
except Exception as e:
    print(json.dumps({"ok": False, "error": str(e)}))
"""


def launch(tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    """Run the platform's launcher with a stand-in `mlflow` that records the environment it is started with."""
    fake = tmp_path / "fake-bin"
    fake.mkdir(exist_ok=True)
    (fake / "mlflow").write_text(_FAKE_MLFLOW.format(python=sys.executable))
    (fake / "mlflow").chmod(0o755)
    dump = tmp_path / "launched.json"
    run_env = {**env, "PATH": f"{fake}{os.pathsep}{env['PATH']}", "MLP_DUMP": str(dump)}
    launcher = documents.mlflow_command(
        MlflowServer(db_secret_id="x", admin_secret_id=None, artifacts_destination="s3://b/m", region=REGION)
    )
    subprocess.run([sys.executable, *launcher[1:]], env=run_env, check=True, capture_output=True, timeout=60)
    recorded: dict[str, str] = json.loads(dump.read_text())["env"]
    return recorded


def connect_like_mlflow(env: dict[str, str]) -> dict[str, Any]:
    """A new SQLAlchemy connection in a fresh Python process with the server's environment (its PYTHONPATH carries
    the hook): what each MLflow worker does."""
    out = subprocess.run(
        [sys.executable, "-c", _CONNECT], env=env, check=True, capture_output=True, text=True, timeout=60
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@needs_postgres
def test_verify_full_connects_only_to_the_right_server_with_the_right_ca(moto_endpoint: str, tmp_path: Path) -> None:
    with tls_postgres() as (postgres, pki):
        password = secrets.token_urlsafe(24) + "!#%@/"  # characters that would need quoting in a URI
        _set_password(postgres, password)
        server = MlflowServer(
            db_secret_id=_secrets(postgres, password),
            admin_secret_id=None,
            artifacts_destination="s3://b/m",
            region=REGION,
            db_ca_file=str(pki.ca),
        )
        env = launch(tmp_path, _launcher_env(tmp_path, moto_endpoint, server))
        uri = env["MLFLOW_BACKEND_STORE_URI"]
        # No password in the URI or anywhere in the server's environment; the CA is the mounted file.
        assert uri == (
            f"postgresql+psycopg2://mlflow@localhost:{postgres.port}/mlflow"
            f"?sslmode=verify-full&sslrootcert={str(pki.ca).replace('/', '%2F')}"
        )
        assert not [k for k, v in env.items() if password in v]
        assert env["PYTHONPATH"].split(os.pathsep)[0] == str(tmp_path / "hook")
        assert (tmp_path / "hook" / "sitecustomize.py").read_text() == documents.MLFLOW_DB_HOOK

        # Right CA, right host name: a TLS session.
        good = connect_like_mlflow(env)
        assert good["ok"] and good["ssl"] is True and good["tls"] in ("TLSv1.2", "TLSv1.3"), good

        # Another CA (same subject name, other key): refused.
        other = connect_like_mlflow(
            {
                **env,
                "MLFLOW_BACKEND_STORE_URI": uri.replace(
                    str(pki.ca).replace("/", "%2F"), str(pki.other_ca).replace("/", "%2F")
                ),
            }
        )
        # OpenSSL finds the issuer by name, then its signature does not verify.
        assert not other["ok"] and "SSL error: provider signature failure" in other["error"], other

        # The right server under a name its certificate does not carry: refused.
        by_address = connect_like_mlflow({**env, "MLFLOW_BACKEND_STORE_URI": uri.replace("@localhost:", "@127.0.0.1:")})
        assert not by_address["ok"], by_address
        assert (
            'server certificate for "localhost" (and 1 other name) does not match host name "127.0.0.1"'
            in (by_address["error"])
        )

        # Without the CA file libpq has nothing to verify with: refused, never an unverified session.
        no_ca = MlflowServer(
            db_secret_id=server.db_secret_id,
            admin_secret_id=None,
            artifacts_destination="s3://b/m",
            region=REGION,
            db_ca_file=None,
        )
        bare = launch(tmp_path, _launcher_env(tmp_path, moto_endpoint, no_ca))
        assert "sslrootcert" not in bare["MLFLOW_BACKEND_STORE_URI"]
        refused = connect_like_mlflow(bare)
        assert not refused["ok"] and "root certificate file" in refused["error"], refused


@needs_postgres
def test_the_launcher_defaults_to_verify_full(moto_endpoint: str, tmp_path: Path) -> None:
    with tls_postgres() as (postgres, pki):
        _set_password(postgres, "pw-" + secrets.token_hex(8))
        server = MlflowServer(
            db_secret_id=_secrets(postgres, "unused", sslmode=None),
            admin_secret_id=None,
            artifacts_destination="s3://b/m",
            region=REGION,
            db_ca_file=str(pki.ca),
        )
        env = launch(tmp_path, _launcher_env(tmp_path, moto_endpoint, server))
        assert "?sslmode=verify-full&sslrootcert=" in env["MLFLOW_BACKEND_STORE_URI"]


# --- a real MLflow server across a rotation -----------------------------------------------------------------------


def _mlflow_sessions(postgres: Postgres) -> list[tuple[int, bool]]:
    rows = _sql(
        postgres,
        "SELECT a.pid, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = 'mlflow'",
    )[0]
    return [(int(r[0]), bool(r[1])) for r in rows]


def _terminate_mlflow_sessions(postgres: Postgres) -> int:
    rows = _sql(postgres, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'mlflow'")[0]
    return len(rows)


@needs_postgres
def test_mlflow_keeps_serving_across_a_password_rotation(moto_endpoint: str, tmp_path: Path) -> None:
    sm = boto3.client("secretsmanager", region_name=REGION)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    admin_password = secrets.token_urlsafe(18)
    first = "first-" + secrets.token_urlsafe(18)
    with tls_postgres() as (postgres, pki):
        _set_password(postgres, first)
        db_arn = _secrets(postgres, first)
        master_arn = json.loads(sm.get_secret_value(SecretId=db_arn)["SecretString"])["password_secret_id"]
        admin_arn = sm.create_secret(
            Name="mlp-test/mlflow-admin",
            SecretString=documents.admin_secret_value(
                username=documents.MLFLOW_ADMIN_USER, password=admin_password, flask_secret_key=secrets.token_hex(32)
            ),
        )["ARN"]
        port = free_port()
        server = MlflowServer(
            db_secret_id=db_arn,
            admin_secret_id=admin_arn,
            artifacts_destination=f"s3://{BUCKET}/mlflow",
            region=REGION,
            workers=2,  # as in the pod: each uvicorn worker is its own process with its own pool
            port=port,
            host="127.0.0.1",
            allowed_hosts=documents.mlflow_allowed_hosts(documents.MLFLOW_SERVICE, documents.MLFLOW_NAMESPACE),
            auth_config_path=str(tmp_path / "auth" / "basic_auth.ini"),
            db_ca_file=str(pki.ca),
        )
        log = tmp_path / "mlflow.log"
        process = start(
            documents.mlflow_command(server), _launcher_env(tmp_path, moto_endpoint, server), log, cwd=tmp_path
        )
        url = f"http://127.0.0.1:{port}"
        admin = (documents.MLFLOW_ADMIN_USER, admin_password)

        def create(name: str) -> str:
            response = requests.post(
                f"{url}/api/2.0/mlflow/experiments/create", json={"name": name}, auth=admin, timeout=30
            )
            assert response.status_code == 200, response.text
            return str(response.json()["experiment_id"])

        def names() -> set[str]:
            response = requests.get(
                f"{url}/api/2.0/mlflow/experiments/search", params={"max_results": 100}, auth=admin, timeout=30
            )
            assert response.status_code == 200, response.text
            return {e["name"] for e in response.json()["experiments"]}

        try:
            wait_for_http(f"{url}/health", process, timeout=180, log=log)
            before = create("before-rotation")
            sessions = _mlflow_sessions(postgres)
            assert sessions and all(ssl for _, ssl in sessions), sessions  # every session is TLS

            # 1. A rotation as RDS does it: the role's password changes, then the managed secret's AWSCURRENT.
            second = "second-" + secrets.token_urlsafe(18)
            _set_password(postgres, second)
            sm.put_secret_value(SecretId=master_arn, SecretString=_master_secret(second))
            # Every pooled connection is lost (a failover, a restart of the database): all new ones now.
            assert _terminate_mlflow_sessions(postgres) >= 1
            for attempt in range(4):  # several requests: both workers and both stores (tracking, auth)
                create(f"after-rotation-{attempt}")
            assert {"before-rotation", "after-rotation-0", "after-rotation-3"} <= names()
            after = _mlflow_sessions(postgres)
            assert after and not {pid for pid, _ in after} & {pid for pid, _ in sessions}, (sessions, after)
            # The old password no longer logs in: the new sessions used the rotated one.
            with pytest.raises(Exception, match="password authentication failed"):
                postgres.connect("mlflow", user="mlflow", password=first)
            assert "mlflow-db-hook: connection refused; retrying with the password now in Secrets Manager" in (
                log.read_text(errors="replace")
            )

            # 2. Mid-rotation: the database already has the new password, AWSCURRENT still the old one; the
            # pending version (what managed rotation writes first) is tried after AWSCURRENT.
            third = "third-" + secrets.token_urlsafe(18)
            sm.put_secret_value(SecretId=master_arn, SecretString=_master_secret(third), VersionStages=["AWSPENDING"])
            _set_password(postgres, third)
            assert _terminate_mlflow_sessions(postgres) >= 1
            create("mid-rotation")
            assert "mid-rotation" in names()
            got = requests.get(
                f"{url}/api/2.0/mlflow/experiments/get", params={"experiment_id": before}, auth=admin, timeout=30
            )
            assert got.status_code == 200 and got.json()["experiment"]["name"] == "before-rotation"

            # Negative control: a new connection with the password the server started with is refused, so the
            # requests above could only succeed with the hook's fresh password.
            with pytest.raises(Exception, match="password authentication failed"):
                postgres.connect("mlflow", user="mlflow", password=second)
        finally:
            stop(process)
        text = log.read_text(errors="replace")
        for value in (first, second, third, admin_password):
            assert value not in text
        # Neither the server's environment nor the auth config on disk ever held a database password.
        assert "@localhost:" in (tmp_path / "auth" / "basic_auth.ini").read_text()
        assert first not in (tmp_path / "auth" / "basic_auth.ini").read_text()


# --- the bundled RDS roots ------------------------------------------------------------------------------------------


def test_rds_roots_are_the_pinned_file_and_the_regions_g1_authorities() -> None:
    from cryptography import x509

    data = Path(documents.__file__).parent / "data"
    meta = json.loads((data / "rds-ca-roots.json").read_text())
    pem = (data / "rds-ca-roots.pem").read_bytes()
    assert hashlib.sha256(pem).hexdigest() == meta["sha256"]
    assert pem.count(b"BEGIN CERTIFICATE") == meta["certificates"] == 81
    bundle = documents.rds_ca_bundle("us-east-1")
    certs = x509.load_pem_x509_certificates(bundle.encode())
    names = sorted(c.subject.rfc4514_string().split("CN=")[1].split(",")[0] for c in certs)
    assert names == [
        "Amazon RDS us-east-1 Root CA ECC384 G1",
        "Amazon RDS us-east-1 Root CA RSA2048 G1",  # the database's ca_cert_identifier rds-ca-rsa2048-g1
        "Amazon RDS us-east-1 Root CA RSA4096 G1",
    ]
    now = datetime.datetime.now(datetime.UTC)
    for cert in certs:
        assert cert.subject == cert.issuer  # roots
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert cert.not_valid_before_utc < now < cert.not_valid_after_utc
    assert len(x509.load_pem_x509_certificates(documents.rds_ca_bundle("eu-west-1").encode())) == 3
    with pytest.raises(ValueError, match="no Amazon RDS root certificates for region 'us-gov-west-1'"):
        documents.rds_ca_bundle("us-gov-west-1")


def test_connection_secret_names_the_password_secret_and_holds_no_password() -> None:
    from mlplatform.infra.mlops.cloud import connection_secret

    platform = json.loads(connection_secret(master_secret_arn="arn:rds!db-1", host="db.example", port=5432))
    assert platform == {
        "engine": "postgres",
        "username": "mlflow",
        "host": "db.example",
        "port": 5432,
        "dbname": "mlflow",
        "sslmode": "verify-full",
        "password_secret_id": "arn:rds!db-1",
    }
    value = json.loads(
        documents.db_secret_value(
            username="mlflow", host="db.example", port=5432, dbname="mlflow", password_secret_id="arn:managed"
        )
    )
    assert value == {
        "engine": "postgres",
        "username": "mlflow",
        "host": "db.example",
        "port": 5432,
        "dbname": "mlflow",
        "sslmode": "verify-full",
        "password_secret_id": "arn:managed",
    }
    with pytest.raises(ValueError, match="exactly one of password and password_secret_id"):
        documents.db_secret_value(username="u", host="h", port=1, dbname="d")
    with pytest.raises(ValueError, match="exactly one"):
        documents.db_secret_value(username="u", host="h", port=1, dbname="d", password="p", password_secret_id="s")


# --- the plans -----------------------------------------------------------------------------------------------------


def _by_name(plan: Plan, name: str) -> Any:
    found = [r for r in plan.resources if r.name == name]
    assert found, f"{name} not in the plan"
    return found[0]


def test_rds_manages_and_rotates_the_master_password(plans: dict[str, Plan]) -> None:
    for stack, plan in plans.items():
        db = _by_name(plan, "mlflow-db")
        key_arn = db.inputs["kmsKeyId"]
        assert db.inputs["manageMasterUserPassword"] is True, stack
        assert db.inputs["masterUserSecretKmsKeyId"] == key_arn  # the platform key, as the storage
        assert "password" not in db.inputs and "passwordWo" not in db.inputs
        assert not [r for r in plan.resources if r.name == "mlflow-db-password"]  # no generated password
        rotation = _by_name(plan, "mlflow-db-password-rotation")
        master = rotation.inputs["secretId"]
        assert ":secret:rds!db-" in master
        assert rotation.inputs["rotationRules"] == {"automaticallyAfterDays": 7}
        assert rotation.inputs["rotateImmediately"] is False and "rotationLambdaArn" not in rotation.inputs
        assert rotation.options.get("retainOnDelete") is True  # RDS owns the secret and deletes it with the db

        # The connection secret's value is built by `connection_secret` (the SDK hides every secret string from
        # the plan; its content is asserted below).
        assert _by_name(plan, "mlflow-db-secret-value").inputs["secretString"] == "[secret]"

        # MLflow's role reads the connection secret, the managed secret and the admin secret, and decrypts with
        # the key that encrypts all three.
        policy = json.loads(_by_name(plan, "mlflow-policy").inputs["policy"])
        statements = {s["Sid"]: s for s in policy["Statement"]}
        secret_arns = {
            _by_name(plan, "mlflow-db-secret").outputs["arn"],
            _by_name(plan, "mlflow-admin-secret").outputs["arn"],
            master,
        }
        assert set(statements["ReadOwnSecrets"]["Resource"]) == secret_arns
        assert statements["ReadOwnSecrets"]["Action"] == "secretsmanager:GetSecretValue"
        assert "kms:Decrypt" in statements["UseTheLakeKey"]["Action"]
        assert statements["UseTheLakeKey"]["Resource"] == key_arn
        assert _by_name(plan, "mlflow-db-secret").inputs["kmsKeyId"] == key_arn


def test_mlflow_pods_verify_the_database_against_the_regions_rds_roots(plans: dict[str, Plan]) -> None:
    plan = plans["prod"]
    deployment = object_of(_by_name(plan, "mlflow-deployment"))
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLFLOW_DB_CA_FILE"] == "/etc/mlflow/database-ca/ca.pem"
    assert {"name": "database-ca", "mountPath": "/etc/mlflow/database-ca", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert {
        "name": "database-ca",
        "configMap": {"name": "mlflow-database-ca", "items": [{"key": "ca.pem", "path": "ca.pem"}]},
    } in pod["volumes"]
    configmap = object_of(_by_name(plan, "mlflow-database-ca"))
    assert configmap["metadata"]["namespace"] == "mlflow"
    assert configmap["data"] == {"ca.pem": documents.rds_ca_bundle("us-east-1")}
    assert "mlflow-database-ca" in _by_name(plan, "mlflow-deployment").options["dependsOn"]


PROTECTED_IN_PROD = (
    "cluster-control-plane-logs",  # the EKS audit log
    "network-flow-logs",
    "mlflow-db-secret",
    "mlflow-admin-secret",
    "mlflow-db",
)


@pytest.mark.parametrize("name", PROTECTED_IN_PROD)
def test_prod_keeps_its_log_groups_and_secrets_dev_does_not(plans: dict[str, Plan], name: str) -> None:
    prod = _by_name(plans["prod"], name).options
    assert (prod.get("protect"), prod.get("retainOnDelete")) == (True, True)
    dev = _by_name(plans["dev"], name).options
    assert not dev.get("protect") and not dev.get("retainOnDelete")
