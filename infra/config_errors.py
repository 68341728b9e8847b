"""Configuration errors: every problem of a stack file with its key path (pure; no schema imports).

Kept apart from the schema so that tools can report config errors without importing pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class ConfigIssue:
    path: Path
    message: str
    line: int | None = None

    def key_path(self) -> str:
        if not self.path:
            return "(stack file)"
        head, *rest = self.path
        text = "aws:region" if head == "region" and not rest else str(head)
        for part in rest:
            text += f"[{part}]" if isinstance(part, int) else f".{part}"
        return text


@dataclass
class ConfigError(Exception):
    """Every problem of one stack's configuration."""

    source: str
    issues: list[ConfigIssue] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.source}: {len(self.issues)} configuration error(s):"]
        for issue in self.issues:
            where = f"{self.source}:{issue.line}" if issue.line else self.source
            lines.append(f"  {where}: {issue.key_path()}: {issue.message}")
        return "\n".join(lines)
