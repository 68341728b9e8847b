"""MLflow (RDS PostgreSQL, Secrets Manager, artifacts in the lake, basic auth) and Ray (KubeRay and RayClusters).
The pure builders import no SDK; the components load on first use."""

from typing import TYPE_CHECKING, Any

from infra.mlops import documents

if TYPE_CHECKING:
    from infra.mlops.mlflow import DatabaseSpec, Mlflow, MlflowArgs
    from infra.mlops.ray import LakeAccess, Ray, RayArgs

__all__ = ["DatabaseSpec", "LakeAccess", "Mlflow", "MlflowArgs", "Ray", "RayArgs", "documents"]

_LAZY = {
    "DatabaseSpec": "mlflow",
    "Mlflow": "mlflow",
    "MlflowArgs": "mlflow",
    "LakeAccess": "ray",
    "Ray": "ray",
    "RayArgs": "ray",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"infra.mlops.{_LAZY[name]}"), name)
    raise AttributeError(name)
