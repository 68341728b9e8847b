"""The steps a pipeline runs, each a function and a `python -m mlplatform.infra.pipelines.steps.<name>` entry point:

- `train.train` / `train.submit_to_ray`: fit, log and register a version, alias `challenger` (optionally as a Ray job);
- `evaluate_and_promote.evaluate_and_promote`: move `champion` to the challenger when it wins;
- `resolve.resolve`: download `models:/<name>@<alias>` into a directory (KServe's storage container, vLLM's init).

Import them from their modules: each function shares its module's name, and `python -m` must find the module not
yet imported, so this package imports nothing (and so neither Pulumi, MLflow nor Ray).
"""
