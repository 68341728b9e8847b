"""Stacks isolated by construction: names from the stack (not the environment), `mlp validate` refusing two stack
files that would collide, and `mlp new STACK --from SOURCE` making a stack that shares nothing with its source."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlplatform.infra.config import validate_config
from mlplatform.infra.config_errors import ConfigError
from mlplatform.mlp.planner import Plan, plan_stack
from mlplatform.mlp.stack_clashes import free_cidr, stack_clashes
from mlplatform.mlp.stackfile import Project, load_project, load_stack
from tests.conftest import ROOT

DEV = (ROOT / "stacks" / "Pulumi.dev.yaml").read_text()
SHARED_CONSEQUENCE = (
    '`pulumi up` of the second would fail with "already exists" (the EKS cluster, its log group, the KMS aliases, '
    "Karpenter's queue and MLflow's secrets are all named after it)"
)
MAYBE_ONE_ACCOUNT = (
    "us-east-1, possibly one account (aws_account_id is unset in both; set it in each if they deploy to different "
    "accounts)"
)

# Inputs that hold a name the resource itself takes in AWS (S3 sub-resources' `bucket` names their bucket instead).
PHYSICAL_NAME_INPUTS = ("name", "namePrefix", "bucketPrefix", "identifierPrefix", "finalSnapshotIdentifier")


def _mlp(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlplatform.mlp.entry", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def physical_names(plan: Plan) -> set[tuple[str, str]]:
    """(resource type, name) of every AWS resource of the plan that carries a name of its own."""
    names = set()
    for r in plan.resources:
        if not (r.custom and r.type.startswith("aws:")):
            continue
        for key in PHYSICAL_NAME_INPUTS:
            if isinstance(r.inputs.get(key), str):
                names.add((r.type, r.inputs[key]))
        if r.type == "aws:ecr/pullThroughCacheRule:PullThroughCacheRule":
            names.add((r.type, r.inputs["ecrRepositoryPrefix"]))
    return names


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A copy of the project with a `sandbox` stack made by `mlp new sandbox --from dev`."""
    project = tmp_path_factory.mktemp("isolation") / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(".venv", ".git", "tests", "__pycache__", "bench"))
    return project, _mlp("new", "sandbox", "--from", "dev", cwd=project)


def _project(tmp_path: Path, stacks: dict[str, str]) -> Project:
    (tmp_path / "stacks").mkdir(parents=True)
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path)
    for name, text in stacks.items():
        (tmp_path / "stacks" / f"Pulumi.{name}.yaml").write_text(text)
    return load_project(tmp_path)


def _clashes(project: Project, stack: str) -> list[str]:
    config = load_stack(project, stack)
    return [f"{i.line}: {i.key_path()}: {i.message}" for i in stack_clashes(project, config, config.validate())]


def _twin(text: str = DEV) -> str:
    """The dev file as another stack of its own: another CIDR and admin secret."""
    return text.replace("cidr: 10.10.0.0/16", "cidr: 10.40.0.0/16").replace("/dev/mlflow-admin", "/twin/mlflow-admin")


def _named(text: str, name: str) -> str:
    return text.replace("  ml-platform:cluster:\n", f"  ml-platform:cluster:\n    name: {name}\n", 1)


# --- names come from the stack -------------------------------------------------------------------------------


def test_names_come_from_the_stack_not_the_environment(stack_config: Callable[[str], dict[str, Any]]) -> None:
    config = stack_config("dev")
    del config["ml-platform:mlflow"]["auth"]["admin_secret"]
    sandbox = validate_config(config, "stacks/Pulumi.sandbox.yaml")
    dev = validate_config(config, "stacks/Pulumi.dev.yaml")
    assert (sandbox.environment, sandbox.cluster_name, sandbox.mlflow_admin_secret) == (
        "dev",
        "mlp-sandbox",
        "mlp-sandbox/mlflow/admin",
    )
    assert (dev.cluster_name, dev.mlflow_admin_secret) == ("mlp-dev", "mlp-dev/mlflow/admin")
    # an explicit stack wins over the file name
    assert validate_config(config, "anything", stack="lab").cluster_name == "mlp-lab"


def test_shipped_stacks_keep_their_names(project: Project) -> None:
    for stack in ("dev", "staging", "prod"):
        cfg = load_stack(project, stack).validate()
        assert (cfg.cluster_name, cfg.mlflow_admin_secret) == (f"mlp-{stack}", f"ml-platform/{stack}/mlflow-admin")


def test_a_bad_name_override_is_a_clear_error(tmp_path: Path) -> None:
    text = _named(DEV, "Mlp_Sandbox")
    project = _project(tmp_path, {"dev": text})
    with pytest.raises(ConfigError) as info:
        load_stack(project, "dev").validate()
    line = _line(text, "name: Mlp_Sandbox")
    assert (
        f'  stacks/Pulumi.dev.yaml:{line}: cluster.name: "Mlp_Sandbox" is not valid: must be lowercase letters, '
        "digits and single hyphens, starting with a letter and not ending with a hyphen"
    ) in str(info.value).splitlines()


def test_a_name_too_long_for_the_bucket_prefixes_is_refused(stack_config: Callable[[str], dict[str, Any]]) -> None:
    config = stack_config("dev")
    config["ml-platform:cluster"]["name"] = "a" * 25
    with pytest.raises(ConfigError) as info:
        validate_config(config, "stacks/Pulumi.dev.yaml")
    assert [(i.key_path(), i.message) for i in info.value.issues] == [
        (
            "cluster.name",
            f"{'a' * 25!r} is 25 characters; at most 24 fit the lake's bucket prefixes (`{'a' * 25}-<zone>-` within "
            "S3's 37-character bucket_prefix)",
        )
    ]


def test_a_stack_name_that_cannot_name_resources_asks_for_cluster_name(
    stack_config: Callable[[str], dict[str, Any]],
) -> None:
    with pytest.raises(ConfigError) as info:
        validate_config(stack_config("dev"), "stacks/Pulumi.My_Lab.yaml")
    assert [(i.key_path(), i.message) for i in info.value.issues] == [
        (
            "cluster.name",
            "the default 'mlp-My_Lab' ('mlp-' and the stack name 'My_Lab') must be lowercase letters, digits and "
            "single hyphens, starting with a letter and not ending with a hyphen; set cluster.name, or name the "
            "stack with lowercase letters, digits and hyphens",
        )
    ]


# --- mlp validate refuses collisions -------------------------------------------------------------------------


def test_two_stacks_with_one_name_override_are_refused(tmp_path: Path) -> None:
    dev, twin = _named(DEV, "shared-ml"), _named(_twin(), "shared-ml")
    project = _project(tmp_path, {"dev": dev, "twin": twin})
    line = _line(twin, "name: shared-ml")
    assert _clashes(project, "twin") == [
        f"{line}: cluster.name: 'shared-ml' is also the name of stacks/Pulumi.dev.yaml:{line} (cluster.name, set "
        f"there), in {MAYBE_ONE_ACCOUNT}: {SHARED_CONSEQUENCE}; set cluster.name to a value of this stack's own"
    ]
    result = _mlp("validate", "twin", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert f"  stacks/Pulumi.twin.yaml:{line}: cluster.name: 'shared-ml' is also the name of" in result.stderr


def test_a_copied_file_collides_on_its_default_name_admin_secret_and_cidr(tmp_path: Path) -> None:
    project = _project(tmp_path, {"dev": DEV, "copy": _named(DEV, "mlp-dev")})
    messages = _clashes(project, "dev")
    assert [m.split(": ")[1] for m in messages] == ["cluster.name", "mlflow.auth.admin_secret", "network.cidr"]
    section = _line(DEV, "ml-platform:cluster:")  # dev sets no cluster.name: the error points into the section
    assert messages[0].startswith(
        f"{section + 1}: cluster.name: 'mlp-dev' (mlp- and the stack name dev) is also the name of "
        f"stacks/Pulumi.copy.yaml:{section + 1} (cluster.name, set there)"
    )
    cidr_line = _line(DEV, "cidr: 10.10.0.0/16")
    assert messages[2] == (
        f"{cidr_line}: network.cidr: 10.10.0.0/16 is also the VPC CIDR 10.10.0.0/16 of "
        f"stacks/Pulumi.copy.yaml:{cidr_line} (network.cidr, set there), in {MAYBE_ONE_ACCOUNT}: overlapping "
        "VPCs cannot be peered or routed through one transit gateway; pick a block no other stack file uses, such as "
        "10.11.0.0/16"
    )


def test_the_same_cidr_is_refused_in_one_account_and_region_only(tmp_path: Path) -> None:
    account = '  ml-platform:aws_account_id: "{}"\n  ml-platform:tags:\n'

    def stack(text: str, account_id: str) -> str:
        return text.replace("  ml-platform:tags:\n", account.format(account_id), 1)

    twin = _twin().replace("cidr: 10.40.0.0/16", "cidr: 10.10.128.0/17")  # inside dev's 10.10.0.0/16
    same = _project(tmp_path / "same", {"dev": stack(DEV, "111122223333"), "twin": stack(twin, "111122223333")})
    (message,) = _clashes(same, "twin")
    line = _line(stack(DEV, "111122223333"), "cidr: 10.10.0.0/16")
    assert message.split(": ", 2)[1:] == [
        "network.cidr",
        f"10.10.128.0/17 overlaps the VPC CIDR 10.10.0.0/16 of stacks/Pulumi.dev.yaml:{line} (network.cidr, set "
        "there), "
        "in account 111122223333, us-east-1: overlapping VPCs cannot be peered or routed through one transit "
        "gateway; pick a block no other stack file uses, such as 10.11.0.0/17",
    ]
    other = _project(tmp_path / "other", {"dev": stack(DEV, "111122223333"), "twin": stack(twin, "444455556666")})
    assert _clashes(other, "twin") == []
    region = _project(
        tmp_path / "region", {"dev": DEV, "twin": twin.replace("aws:region: us-east-1", "aws:region: us-west-2")}
    )
    assert _clashes(region, "twin") == []


def test_the_shipped_stacks_do_not_collide(project: Project) -> None:
    assert {stack: _clashes(project, stack) for stack in project.stacks()} == {
        "dev": [],
        "prod": [],
        "staging": [],
    }


def test_free_cidr_takes_the_next_free_block_and_wraps() -> None:
    assert free_cidr("10.10.0.0/16", ["10.10.0.0/16", "10.11.0.0/16", "10.20.0.0/16"]) == "10.12.0.0/16"
    assert free_cidr("10.255.0.0/16", ["10.255.0.0/16", "10.0.0.0/12"]) == "10.16.0.0/16"
    assert free_cidr("192.168.0.0/16", ["192.168.0.0/16"]) is None


# --- mlp new -------------------------------------------------------------------------------------------------


def test_mlp_new_writes_a_commented_copy_with_its_own_cidr_and_names(
    sandbox: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    root, result = sandbox
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:4] == [
        "wrote stacks/Pulumi.sandbox.yaml from stacks/Pulumi.dev.yaml",
        "  mlflow.auth.admin_secret: ml-platform/dev/mlflow-admin -> ml-platform/sandbox/mlflow-admin",
        "  network.cidr: 10.10.0.0/16 -> 10.11.0.0/16",
        "ok stack sandbox: environment dev, region us-east-1, cluster mlp-sandbox (Kubernetes 1.35), 1 GPU pool(s)",
    ]
    assert "  mlp plan sandbox" in result.stdout and "  pulumi up -s sandbox" in result.stdout
    lines = (root / "stacks" / "Pulumi.sandbox.yaml").read_text().splitlines()
    assert lines[0].startswith("# sandbox: made by `mlp new sandbox --from dev` from stacks/Pulumi.dev.yaml")
    changed = [(a, b) for a, b in zip(lines[1:], DEV.splitlines(), strict=True) if a != b]
    assert changed == [
        ("    cidr: 10.11.0.0/16", "    cidr: 10.10.0.0/16"),
        ("      admin_secret: ml-platform/sandbox/mlflow-admin", "      admin_secret: ml-platform/dev/mlflow-admin"),
    ]
    assert sum("# REPLACE" in line for line in lines) == DEV.count("# REPLACE") > 0


def test_mlp_new_never_overwrites_and_refuses_bad_names(sandbox: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    root, _ = sandbox
    path = root / "stacks" / "Pulumi.sandbox.yaml"
    before = path.read_text()
    again = _mlp("new", "sandbox", "--from", "prod", cwd=root)
    assert (again.returncode, again.stderr) == (
        2,
        "error: stacks/Pulumi.sandbox.yaml already exists; `mlp new` never overwrites a stack file: pick another "
        "name, or delete the file first if you mean to start it again\n",
    )
    assert path.read_text() == before
    bad = _mlp("new", "My_Lab", "--from", "dev", cwd=root)
    assert (bad.returncode, bad.stderr) == (
        2,
        "error: stacks/Pulumi.My_Lab.yaml: the stack name 'My_Lab' must be lowercase letters, digits and single "
        "hyphens, starting with a letter (it names the stack file and, as mlp-<stack>, every AWS resource of the "
        "stack)\n",
    )
    assert not (root / "stacks" / "Pulumi.My_Lab.yaml").exists()


def test_no_two_stack_files_share_a_physical_name(sandbox: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    root, result = sandbox
    assert result.returncode == 0, result.stderr
    project = load_project(root)
    assert project.stacks() == ["dev", "prod", "sandbox", "staging"]
    names = {stack: physical_names(plan_stack(load_stack(project, stack))) for stack in project.stacks()}
    assert ("aws:eks/cluster:Cluster", "mlp-sandbox") in names["sandbox"]
    assert ("aws:sqs/queue:Queue", "mlp-sandbox-karpenter") in names["sandbox"]
    assert ("aws:cloudwatch/logGroup:LogGroup", "/aws/eks/mlp-sandbox/cluster") in names["sandbox"]
    assert ("aws:kms/alias:Alias", "alias/mlp-sandbox-logs") in names["sandbox"]
    assert ("aws:ecr/pullThroughCacheRule:PullThroughCacheRule", "mlp-prod/quay") in names["prod"]
    for a, b in itertools.combinations(names, 2):
        assert names[a] & names[b] == set(), (a, b)
