"""AWS tagging rules and the required cost tags, as pure data and functions (used by config and policies)."""

from __future__ import annotations

import re

REQUIRED_COST_TAGS: tuple[str, ...] = ("cost-center", "team", "environment", "project", "owner")
MAX_AWS_TAGS = 50
# Tags the platform adds to every resource itself, on top of the configured cost tags.
PLATFORM_TAG_KEYS: tuple[str, ...] = ("managed-by", "pulumi-stack")
_TAG_CHARS = re.compile(r"^[\w\s+\-=.:/@]*$", re.UNICODE)


def tag_problems(key: str, value: str) -> list[str]:
    """What is wrong with one AWS tag under AWS's tagging rules."""
    problems = []
    if not 1 <= len(key) <= 128:
        problems.append(f"tag key must be 1 to 128 characters (is {len(key)})")
    if len(value) > 256:
        problems.append(f"tag value must be at most 256 characters (is {len(value)})")
    if key.lower().startswith("aws:"):
        problems.append("tag keys starting with `aws:` are reserved for AWS")
    if not _TAG_CHARS.match(key):
        problems.append("tag key may contain only letters, digits, spaces and _ . : / = + - @")
    if not _TAG_CHARS.match(value):
        problems.append("tag value may contain only letters, digits, spaces and _ . : / = + - @")
    return problems
