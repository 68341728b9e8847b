"""The ML platform blueprint as an importable library: `mlplatform.infra` (the Pulumi components),
`mlplatform.policies` (the policy rules) and `mlplatform.mlp` (the offline planner and the `mlp` command).

In the repository `infra/`, `policies/` and `mlp/` keep their places (the layout Pulumi and CrossGuard expect) and
`mlplatform/` links to them; the wheel holds them under `mlplatform/`. Either way there is one import path,
`mlplatform.<package>`, so the library's names do not clash with a program's own `infra` or `policies`.
"""
