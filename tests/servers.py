"""Real servers for contract tests, each on 127.0.0.1 and a free port, stopped by the test that started it:
PostgreSQL (when the machine has it), MLflow and a Ray head.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.aws_server import free_port

VENV_BIN = str(Path(sys.executable).parent)


def wait_for_http(
    url: str,
    process: subprocess.Popen[bytes] | None,
    timeout: float,
    log: Path | None = None,
    accept: tuple[int, ...] = (200,),
) -> None:
    """Poll `url` until it answers with an accepted status, the process exits, or the timeout passes."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
            raise RuntimeError(f"server exited with {process.returncode} before {url} answered:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status in accept:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code in accept:
                return
            last = str(exc)
        except OSError as exc:
            last = str(exc)
        time.sleep(0.3)
    tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s ({last}):\n{tail}")


def stop(process: subprocess.Popen[bytes], timeout: float = 20, *, leader_first: bool = False) -> None:
    """Terminate a server and its children (it runs in its own process group). `leader_first`: a server that stops
    its own children on a SIGTERM of its own (`ray start --block`, in about 4 s) gets it first, and the group after
    it exits; a SIGTERM to the whole group leaves such a server waiting on children already going until the
    SIGKILL."""
    if process.poll() is not None:
        return
    if leader_first:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def start(cmd: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    return subprocess.Popen(
        list(cmd), env=dict(env), stdout=out, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
    )


# --- PostgreSQL -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    superuser: str
    password: str

    def connect(self, dbname: str = "postgres", user: str | None = None, password: str | None = None) -> object:
        import psycopg2

        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=user or self.superuser,
            password=password or self.password,
            dbname=dbname,
        )


def postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _as_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as `postgres` (or `nobody`) when the tests run as root."""
    if os.geteuid() != 0:
        return cmd
    import pwd

    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--", *cmd]
    raise RuntimeError("running as root and no unprivileged user to run PostgreSQL as")


@contextlib.contextmanager
def postgres_server() -> Iterator[Postgres | None]:
    """A throw-away PostgreSQL cluster, or None when the machine has no PostgreSQL.

    Its directory is a fresh one under the system temp dir (pytest's own are private to the test user, and
    PostgreSQL runs as another user when the tests run as root); it is removed afterwards."""
    bindir = postgres_bin()
    if bindir is None:
        yield None
        return
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="mlp-postgres-"))
    try:
        with _cluster(bindir, workdir) as server:
            yield server
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def _cluster(bindir: Path, workdir: Path) -> Iterator[Postgres]:
    data, sockets = workdir / "data", workdir / "sockets"
    sockets.mkdir()
    password = "contract-test-superuser"
    pwfile = workdir / "pw"
    pwfile.write_text(password)
    if os.geteuid() == 0:
        import pwd

        user = "postgres" if _user_exists("postgres") else "nobody"
        entry = pwd.getpwnam(user)
        for path in (workdir, sockets, pwfile):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    init = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256", f"--pwfile={pwfile}"]
    subprocess.run(_as_user(init), check=True, capture_output=True)
    port = free_port()
    log = workdir / "postgres.log"
    ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60"]
    options = f"-h 127.0.0.1 -p {port} -k {sockets}"
    subprocess.run(_as_user([*ctl, "-o", options, "start"]), check=True, capture_output=True)
    try:
        yield Postgres(host="127.0.0.1", port=port, superuser="postgres", password=password)
    finally:
        subprocess.run(_as_user([*ctl, "-m", "fast", "stop"]), capture_output=True)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


# --- Ray --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RayHead:
    dashboard_url: str
    token: str


@contextlib.contextmanager
def ray_head(token: str | None) -> Iterator[RayHead]:
    """A Ray head on 127.0.0.1 (one CPU, no GPU), with token authentication when a token is given.

    Every port Ray opens is a free one on the loopback address; the temp dir is short because Ray's socket paths
    must fit in 107 characters."""
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="mlp-ray-"))
    ports = {
        name: free_port()
        for name in ("gcs", "dashboard", "client", "agent", "agent_grpc", "metrics", "node", "objects", "runtime_env")
    }
    cmd = [
        str(Path(VENV_BIN) / "ray"),
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--port={ports['gcs']}",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={ports['dashboard']}",
        f"--ray-client-server-port={ports['client']}",
        f"--dashboard-agent-listen-port={ports['agent']}",
        f"--dashboard-agent-grpc-port={ports['agent_grpc']}",
        f"--metrics-export-port={ports['metrics']}",
        f"--node-manager-port={ports['node']}",
        f"--object-manager-port={ports['objects']}",
        f"--runtime-env-agent-port={ports['runtime_env']}",
        "--min-worker-port=0",
        "--max-worker-port=0",
        "--num-cpus=1",
        "--num-gpus=0",
        "--object-store-memory=100000000",
        "--include-dashboard=true",
        "--disable-usage-stats",
        f"--temp-dir={workdir / 't'}",
    ]
    env = {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(workdir),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token" if token else "disabled",
    }
    if token:
        env["RAY_AUTH_TOKEN"] = token
    log = workdir / "ray.log"
    process = start(cmd, env, log, cwd=workdir)
    url = f"http://127.0.0.1:{ports['dashboard']}"
    try:
        wait_for_http(f"{url}/api/gcs_healthz", process, timeout=120, log=log, accept=(200, 401))
        yield RayHead(dashboard_url=url, token=token or "")
    finally:
        stop(process, timeout=30, leader_first=True)
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class RayCluster:
    """A Ray head and extra nodes on this machine, token-authenticated; `env` is every node's environment (Ray's
    workers inherit it: storage endpoints and credentials go there)."""

    address: str
    token: str
    workdir: Path
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]]

    def driver_env(self) -> dict[str, str]:
        """The environment of a driver process that connects to this cluster."""
        return {**self.env, "RAY_ADDRESS": self.address}

    def add_node(self, num_cpus: int, name: str) -> subprocess.Popen[bytes]:
        """Start a worker node (`ray start --address ... --block`, as a KubeRay worker pod runs it) and wait until
        it has joined."""
        cmd = _ray_start(f"--address={self.address}", num_cpus=num_cpus, object_store=80_000_000)
        return _started(cmd, self, name)


def _ray_start(*first: str, num_cpus: int, object_store: int) -> list[str]:
    """`ray start ... --block` on 127.0.0.1, every port a free one, no GPU."""
    return [
        str(Path(VENV_BIN) / "ray"),
        "start",
        *first,
        "--block",
        "--node-ip-address=127.0.0.1",
        *(
            f"--{flag}={free_port()}"
            for flag in (
                "node-manager-port",
                "object-manager-port",
                "dashboard-agent-listen-port",
                "dashboard-agent-grpc-port",
                "metrics-export-port",
                "runtime-env-agent-port",
            )
        ),
        "--min-worker-port=0",
        "--max-worker-port=0",
        f"--num-cpus={num_cpus}",
        "--num-gpus=0",
        f"--object-store-memory={object_store}",
        "--disable-usage-stats",
    ]


def _started(cmd: list[str], cluster: RayCluster, name: str, timeout: float = 60) -> subprocess.Popen[bytes]:
    """Start a `ray start` process of the cluster and wait for Ray's "started" line in its log."""
    log = cluster.workdir / f"{name}.log"
    process = start(cmd, cluster.env, log, cwd=cluster.workdir)
    cluster.processes.append(process)
    deadline = time.monotonic() + timeout
    while b"Ray runtime started" not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    return process


@contextlib.contextmanager
def ray_cluster(num_cpus: int, env: Mapping[str, str]) -> Iterator[RayCluster]:
    """A Ray head with `num_cpus` CPUs and no dashboard (`add_node` adds nodes), on 127.0.0.1 ports, with token
    authentication; every process is stopped at the end. HOME is the cluster's own directory, so no token of the
    user's (~/.ray) is read or written."""
    import secrets
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="mlp-rc-"))
    token = secrets.token_hex(32)
    node_env = {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(workdir),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",  # several nodes on one machine (Ray refuses them otherwise)
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": token,
        **env,
    }
    gcs = free_port()
    cluster = RayCluster(f"127.0.0.1:{gcs}", token, workdir, node_env, [])
    head = _ray_start(
        "--head",
        f"--port={gcs}",
        f"--ray-client-server-port={free_port()}",
        num_cpus=num_cpus,
        object_store=100_000_000,
    )
    head += ["--include-dashboard=false", f"--temp-dir={workdir / 't'}"]
    try:
        _started(head, cluster, "head", timeout=90)
        yield cluster
    finally:
        for process in reversed(cluster.processes):
            # SIGKILL: `ray start --block` would drain on SIGTERM (RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S).
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
