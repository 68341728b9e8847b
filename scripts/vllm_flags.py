#!/usr/bin/env python3
"""Write infra/catalog/data/vllm_flags.json: every command-line flag of a vLLM release's `vllm serve`.

vLLM cannot be installed here (it needs a GPU stack), so the flags are read from the wheel's source: explicit
`add_argument("--flag", ...)` calls in engine/arg_utils.py and entrypoints/**, plus the fields of the frontend
argument dataclasses (which vLLM turns into `--field-name`, and `--no-field-name` for booleans).

    pip download vllm==0.33.0 --no-deps -d /tmp/dl && unzip -q /tmp/dl/vllm-*.whl -d /tmp/dl/vllm
    python3 scripts/vllm_flags.py /tmp/dl/vllm /tmp/dl/vllm-0.33.0-*.whl
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "infra" / "catalog" / "data" / "vllm_flags.json"
FRONTEND_CLASSES = {"BaseFrontendArgs", "FrontendArgs"}


def flags(root: Path) -> set[str]:
    found: set[str] = set()
    sources = [root / "vllm" / "engine" / "arg_utils.py", *sorted((root / "vllm" / "entrypoints").rglob("*.py"))]
    for path in sources:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("--"):
                        found.add(arg.value)
            if isinstance(node, ast.ClassDef) and node.name in FRONTEND_CLASSES:
                for item in node.body:
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        name = "--" + item.target.id.replace("_", "-")
                        found.add(name)
                        if ast.unparse(item.annotation).startswith("bool"):
                            found.add("--no-" + item.target.id.replace("_", "-"))
    return found


def main(argv: list[str]) -> int:
    root, wheel = Path(argv[0]), Path(argv[1])
    version = re.search(r"vllm-([0-9.]+)-", wheel.name)
    document = {
        "version": version.group(1) if version else "?",
        "source": f"{wheel.name} (PyPI), sha256 {hashlib.sha256(wheel.read_bytes()).hexdigest()}",
        "method": "AST of vllm/engine/arg_utils.py and vllm/entrypoints/**: add_argument literals and the fields "
        "of the frontend argument dataclasses",
        "flags": sorted(flags(root)),
    }
    OUT.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(document['flags'])} flags of vLLM {document['version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
