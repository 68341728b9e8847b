"""Stacks of one project that would collide: the same physical name or overlapping VPC CIDRs (`mlp validate`).

Each stack claims a few values that must be its own wherever it could share an account and region with another
stack: its name (`cluster.name`, default `mlp-<stack>`; every physical name starts with it, see `infra.naming`),
the MLflow admin secret it creates, the image cache's repository prefix and its VPC CIDR (overlapping VPCs of one
account and region cannot be peered or share a transit gateway). Two stacks may share an account and region when
their regions are equal and their `aws_account_id`s are equal or either is unset; an unset account is reported as
a possible clash, with what to set if they deploy to different accounts.

Pure apart from reading the project's other stack files; errors are `ConfigIssue`s of the stack being checked,
each naming the other file and its key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from mlplatform.infra.config import PlatformConfig, image_cache_prefix
from mlplatform.infra.config_errors import ConfigError, ConfigIssue, Path
from mlplatform.infra.naming import DEFAULT_PREFIX
from mlplatform.mlp.stackfile import Project, StackConfig, load_stack

_PRIVATE_RANGES = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


_CONSEQUENCES = {
    "name": '`pulumi up` of the second would fail with "already exists" (the EKS cluster, its log group, the KMS '
    "aliases, Karpenter's queue and MLflow's secrets are all named after it)",
    "MLflow admin secret": '`pulumi up` of the second would fail with "already exists"',
    "image cache prefix": "`pulumi up` of the second would fail: ECR has one pull-through cache rule per prefix",
}


@dataclass(frozen=True)
class Claim:
    """A value one stack needs for itself, and the key it comes from."""

    what: str
    """What collides when two stacks share it (`its name`, `its MLflow admin secret`, ...)."""
    value: str
    path: Path
    default: str | None = None
    """How a value the stack file does not set came about (e.g. `mlp- and the stack name dev`)."""


@dataclass(frozen=True)
class _Stack:
    config: StackConfig
    cfg: PlatformConfig

    def where(self, claim: Claim) -> str:
        line = self.config.line_of(claim.path) if claim.default is None else None
        at = f"{self.config.source}:{line}" if line else self.config.source
        how = f"default: {claim.default}" if claim.default else "set there"
        return f"{at} ({_key(claim.path)}, {how})"


def claims(cfg: PlatformConfig) -> list[Claim]:
    """The values of one stack that no other stack in its account and region may have."""
    cluster = cfg.cluster
    adopt = cluster.adopt
    if cluster.name:
        name = Claim("name", cfg.cluster_name, ("cluster", "name"))
    elif adopt is not None and adopt.cluster_name:
        name = Claim("name", cfg.cluster_name, ("cluster", "adopt", "cluster_name"))
    else:
        name = Claim("name", cfg.cluster_name, ("cluster", "name"), f"{DEFAULT_PREFIX} and the stack name {cfg.stack}")
    found = [name]
    if cfg.mlflow.enabled and cfg.mlflow.auth.enabled:
        path: Path = ("mlflow", "auth", "admin_secret")
        default = None if cfg.mlflow.auth.admin_secret else "<name>/mlflow/admin"
        found.append(Claim("MLflow admin secret", cfg.mlflow_admin_secret, path, default))
    if cluster.image_cache.is_enabled(cfg.environment):
        default = None if cluster.image_cache.prefix else "the name in lower case"
        found.append(
            Claim("image cache prefix", image_cache_prefix(cfg), ("cluster", "image_cache", "prefix"), default)
        )
    return found


def shared_scope(a: PlatformConfig, b: PlatformConfig) -> str | None:
    """Where two stacks may meet: None when they cannot (another region, or two different accounts), else the
    region and account in words, with what to set when an account is unset."""
    if a.region != b.region:
        return None
    if a.aws_account_id and b.aws_account_id:
        return None if a.aws_account_id != b.aws_account_id else f"account {a.aws_account_id}, {a.region}"
    return (
        f"{a.region}, possibly one account (aws_account_id is unset in "
        f"{'both' if not (a.aws_account_id or b.aws_account_id) else 'one of them'}; set it in each if they deploy "
        "to different accounts)"
    )


def stack_clashes(project: Project, stack_config: StackConfig, cfg: PlatformConfig) -> list[ConfigIssue]:
    """Every value of this stack that another stack file of the project would also claim in the same account and
    region. Another stack file that does not validate is left out: its own `mlp validate` reports it."""
    this = _Stack(stack_config, cfg)
    others = _other_stacks(project, stack_config.stack)
    issues: list[ConfigIssue] = []
    for other in others:
        scope = shared_scope(cfg, other.cfg)
        if scope is None:
            continue
        theirs = {(c.what, c.value): c for c in claims(other.cfg)}
        for claim in claims(cfg):
            match = theirs.get((claim.what, claim.value))
            if match is None:
                continue
            own = f" ({claim.default})" if claim.default else ""
            issues.append(
                ConfigIssue(
                    claim.path,
                    f"{claim.value!r}{own} is also the {claim.what} of {other.where(match)}, in {scope}: "
                    f"{_CONSEQUENCES[claim.what]}; set {_key(claim.path)} to a value of this stack's own",
                    stack_config.line_of(claim.path),
                )
            )
        issues.extend(_cidr_clash(this, other, scope, others))
    return issues


def check_stack_clashes(project: Project, stack_config: StackConfig, cfg: PlatformConfig) -> None:
    """Raise ConfigError (exit 2 in the CLI) with every clash of this stack with the project's other stack files."""
    issues = stack_clashes(project, stack_config, cfg)
    if issues:
        raise ConfigError(stack_config.source, issues)


def free_cidr(like: str, taken: Iterable[str]) -> str | None:
    """A block of `like`'s size in `like`'s private range that overlaps none of `taken`: the next one after
    `like`, wrapping around (10.10.0.0/16 with 10.11 and 10.20 taken gives 10.12.0.0/16), or None."""
    net = ipaddress.IPv4Network(like)
    used = [ipaddress.IPv4Network(t) for t in taken]
    pool = next((r for r in _PRIVATE_RANGES if net.subnet_of(r)), _PRIVATE_RANGES[0])
    size = net.num_addresses
    count = pool.num_addresses // size
    start = (int(net.network_address) - int(pool.network_address)) // size if net.subnet_of(pool) else -1
    for step in range(1, count + 1):
        index = (start + step) % count
        candidate = ipaddress.IPv4Network((int(pool.network_address) + index * size, net.prefixlen))
        if not any(candidate.overlaps(u) for u in used):
            return str(candidate)
    return None


def _cidr_clash(this: _Stack, other: _Stack, scope: str, everyone: list[_Stack]) -> list[ConfigIssue]:
    mine, theirs = this.cfg.network, other.cfg.network
    if mine.adopt is not None or theirs.adopt is not None:
        return []
    a, b = ipaddress.IPv4Network(mine.cidr), ipaddress.IPv4Network(theirs.cidr)
    if not a.overlaps(b):
        return []
    path: Path = ("network", "cidr")
    taken = [s.cfg.network.cidr for s in [this, *everyone] if s.cfg.network.adopt is None]
    spare = free_cidr(mine.cidr, taken)
    hint = f"pick a block no other stack file uses, such as {spare}" if spare else "pick a block no other uses"
    verb = "is also" if a == b else "overlaps"
    return [
        ConfigIssue(
            path,
            f"{mine.cidr} {verb} the VPC CIDR {theirs.cidr} of {other.where(Claim('VPC CIDR', theirs.cidr, path))}, "
            f"in {scope}: overlapping VPCs cannot be peered or routed through one transit gateway; {hint}",
            this.config.line_of(path),
        )
    ]


def _other_stacks(project: Project, stack: str) -> list[_Stack]:
    found = []
    for name in project.stacks():
        if name == stack:
            continue
        try:
            config = load_stack(project, name)
            found.append(_Stack(config, config.validate()))
        except ConfigError:
            continue
    return found


def _key(path: Path) -> str:
    return ConfigIssue(path, "").key_path()
