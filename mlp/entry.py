"""The `mlp` console script. `mlp policy` is dispatched before the rest of the CLI is imported, so that the CI
policy gate starts fast; every other command goes to the typer app in mlp/cli.py."""

from __future__ import annotations

import os
import sys


def main() -> None:
    if sys.argv[1:2] == ["policy"]:
        from mlplatform.policies.cli import main as policy_main

        try:
            code = policy_main(sys.argv[2:])
        except Exception as exc:
            if os.environ.get("MLP_DEBUG") == "1":
                raise
            print(
                f"internal error: {type(exc).__name__}: {exc}\n(run with MLP_DEBUG=1 for a traceback)", file=sys.stderr
            )
            code = 70
        sys.stdout.flush()
        sys.exit(code)
    from mlplatform.mlp.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
