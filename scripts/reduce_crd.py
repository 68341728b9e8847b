#!/usr/bin/env python3
"""Reduce upstream CustomResourceDefinition YAML files to the JSON the schema tests read.

    python3 scripts/reduce_crd.py OUT_DIR SOURCE_NOTE CRD.yaml [CRD.yaml ...]

For each CRD it keeps the group, kind and each served version's openAPIV3Schema, and records the source file's
sha256 and the given note (upstream repository, path, tag and date). Needs PyYAML.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import yaml


def reduce(path: Path, note: str) -> dict[str, object]:
    raw = path.read_bytes()
    crd = yaml.safe_load(raw)
    spec = crd["spec"]
    return {
        "source": {"file": path.name, "sha256": hashlib.sha256(raw).hexdigest(), "upstream": note},
        "group": spec["group"],
        "kind": spec["names"]["kind"],
        "versions": {v["name"]: v["schema"]["openAPIV3Schema"] for v in spec["versions"] if v.get("served", True)},
    }


def main(argv: list[str]) -> int:
    out_dir, note, *files = argv
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    for name in files:
        reduced = reduce(Path(name), note)
        out = target / (Path(name).name.removesuffix(".yaml") + ".json")
        out.write_text(json.dumps(reduced, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")
        print(f"{out}: {reduced['group']}/{reduced['kind']} {sorted(reduced['versions'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
