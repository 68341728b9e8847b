"""The Kubernetes schema checks moved to `mlp.k8s_schema` (the planner's schema gate uses them); the tests keep
importing them from here."""

from mlplatform.mlp.k8s_schema import (
    CRD_DIR,
    NOT_OBJECTS,
    crd_schemas,
    is_builtin,
    object_of,
    validate_builtin,
    validate_custom_resource,
    validate_plan,
)

__all__ = [
    "CRD_DIR",
    "NOT_OBJECTS",
    "crd_schemas",
    "is_builtin",
    "object_of",
    "validate_builtin",
    "validate_custom_resource",
    "validate_plan",
]
