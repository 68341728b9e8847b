"""`mlp prices refresh`: fetch the prices the estimate needs from the AWS Price List API into the user's cache.

`client_factory` is the seam: the command calls it for its `pricing` client (tests replace it with a function
returning a botocore-Stubber'd client). AWS failures become `AccountError` (exit 4, a message, no traceback).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlplatform.mlp.errors import AccountError


class PricesAction(enum.StrEnum):
    refresh = "refresh"


def default_client_factory() -> Any:
    """The Price List API's client: its endpoint is in us-east-1 whatever region is priced."""
    import boto3

    # A fresh session each time: boto3's default session caches the credentials it first resolved.
    return boto3.session.Session().client("pricing", region_name="us-east-1")


client_factory: Callable[[], Any] = default_client_factory

_STACK_REGION = re.compile(r"^\s*aws:region:\s*([a-z0-9-]+)\s*$", re.MULTILINE)


def stack_regions(stack_files: Sequence[Path]) -> list[str]:
    """The `aws:region` of each stack file (the default regions to refresh)."""
    found = {m for path in stack_files for m in _STACK_REGION.findall(path.read_text(encoding="utf-8"))}
    return sorted(found)


def parse_regions(text: str | None, stack_files: Sequence[Path]) -> list[str]:
    """`--regions r1,r2`, checked; the stacks' regions when not given. Raises ValueError naming a bad one."""
    from mlplatform.infra.catalog.price_list import REGION_PATTERN

    regions = [r.strip() for r in text.split(",") if r.strip()] if text else stack_regions(stack_files)
    bad = [r for r in regions if not REGION_PATTERN.match(r)]
    if bad:
        raise ValueError(f"--regions: not an AWS region name: {', '.join(bad)} (e.g. us-west-2,eu-west-1)")
    if not regions:
        raise ValueError("--regions: none given and no stack file names aws:region")
    return regions


def refresh(
    regions: Sequence[str],
    cache_dir: Path | None,
    stack_files: Sequence[Path],
    *,
    say: Callable[[str], None],
    today: dt.date | None = None,
) -> int:
    """Fetch, write the cache, report; 0 when every figure was found, 1 when some are missing (the rest is
    written, the missing ones are listed and stay unpriced: never zero)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

    from mlplatform.infra.catalog import price_list
    from mlplatform.infra.catalog.prices import price_cache_dir

    target = cache_dir if cache_dir is not None else price_cache_dir()
    instance_types, rds_classes = price_list.wanted_types(stack_files)
    results = []
    try:
        client = client_factory()
        for region in regions:
            say(f"{region}: reading the AWS Price List API ({len(instance_types)} instance types, services)")
            results.append(price_list.refresh_region(client, region, instance_types, rds_classes))
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise AccountError(
            f"the AWS Price List API needs credentials ({exc}); set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY (any account; the caller needs pricing:GetProducts)"
        ) from None
    except ClientError as exc:
        raise AccountError(f"the AWS Price List API refused the request: {exc}") from None
    except BotoCoreError as exc:
        raise AccountError(f"the AWS Price List API could not be reached: {exc}") from None
    paths = price_list.write_cache(target, results, today or dt.date.today())
    missing = 0
    for r in results:
        say(f"{r.region}: {len(r.ec2)} instance types and {len(r.services)} service prices")
        for item in r.missing:
            say(f"{r.region}: MISSING {item}")
        missing += len(r.missing)
    say(f"wrote {', '.join(str(p) for p in paths)}")
    if missing:
        say(f"{missing} price(s) not found: they stay unpriced (never $0); see `missing` in the cache files")
        return 1
    return 0
