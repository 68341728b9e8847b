"""One rule set for Pulumi CrossGuard, offline plans and Terraform plans.

Rules are pure functions over a normalized resource; `policies/__main__.py` wraps them in a CrossGuard pack.
Importing this package imports no Pulumi SDK.
"""
