"""Pipelines: the code that moves a model from experiment to production without a `pulumi up`."""
