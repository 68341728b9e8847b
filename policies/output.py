"""Policy reports as JSON, SARIF 2.1.0 (for GitHub code scanning) and a plain table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mlplatform.policies.model import Report, Rule

SARIF_LEVEL = {"mandatory": "error", "advisory": "warning", "disabled": "none"}
SECURITY_SEVERITY = {"low": "3.0", "medium": "5.0", "high": "7.5", "critical": "9.5"}


def to_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n"


def artifact_location(artifact: str, root: Path | None = None) -> dict[str, str]:
    """A SARIF artifactLocation: a URI relative to the source root (%SRCROOT%, the working directory), as code
    scanning expects, or an absolute file URI for a file outside it."""
    base = (root or Path.cwd()).resolve()
    path = Path(artifact)
    absolute = path if path.is_absolute() else base / path
    absolute = Path(*absolute.parts)  # drops `.` parts; `..` is resolved below
    try:
        relative = absolute.resolve().relative_to(base)
    except ValueError:
        return {"uri": absolute.resolve().as_uri()}
    return {"uri": quote(relative.as_posix()), "uriBaseId": "%SRCROOT%"}


def to_sarif(report: Report, rules: Sequence[Rule], artifact: str) -> str:
    """SARIF with one rule entry per policy and one result per violation, located at the analysed file.

    The driver has no `informationUri`: the project publishes no documentation URL (pyproject.toml names none);
    each rule's help text carries its remediation and references, and docs/POLICIES.md lists them all.
    """
    used = {v.rule for v in report.violations}
    rule_list = [r for r in rules if r.id in used]
    index = {r.id: i for i, r in enumerate(rule_list)}
    location = artifact_location(artifact)
    driver: dict[str, Any] = {
        "name": "mlp-policy",
        "rules": [
            {
                "id": r.id,
                "name": r.id,
                "shortDescription": {"text": r.description},
                "help": {"text": f"{r.remediation}\nReferences: {', '.join(r.references)}"},
                "properties": {"security-severity": SECURITY_SEVERITY[r.severity], "tags": [r.severity]},
            }
            for r in rule_list
        ],
    }
    results = [
        {
            "ruleId": v.rule,
            "ruleIndex": index[v.rule],
            "level": SARIF_LEVEL[v.level],
            "message": {"text": f"{v.resource} ({v.resource_type}): {v.message}"},
            "locations": [
                {
                    "physicalLocation": {"artifactLocation": location},
                    "logicalLocations": [{"name": v.resource, "kind": "resource"}],
                }
            ],
        }
        for v in report.violations
    ]
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "results": results}],
    }
    return json.dumps(sarif, indent=2, sort_keys=True) + "\n"


def to_table(report: Report) -> str:
    """A fixed-width table for terminals and CI logs (no colour codes, nothing to install)."""
    lines = []
    if report.violations:
        widths = (
            9,
            8,
            max(len(v.rule) for v in report.violations),
            min(60, max(len(v.resource) for v in report.violations)),
        )
        header = ("LEVEL", "SEVERITY", "RULE", "RESOURCE")
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + "  MESSAGE")
        for v in report.violations:
            cells = (v.level, v.severity, v.rule, v.resource[: widths[3]])
            lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + f"  {v.message}")
    mandatory = len(report.mandatory)
    unjudged = f"; {len(report.unjudged)} unjudged (configured, known only after apply)" if report.unjudged else ""
    lines.append(
        f"{len(report.violations)} violation(s), {mandatory} mandatory; {report.checked} resources checked with "
        f"{report.rules} rules; {len(report.skipped)} skipped{unjudged}"
    )
    for s in report.skipped:
        lines.append(f"  skipped {s.resource} ({s.type}): {s.reason}")
    return "\n".join(lines) + "\n"
