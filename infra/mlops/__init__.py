"""MLflow (RDS PostgreSQL, Secrets Manager, artifacts in the lake, basic auth) and Ray (KubeRay and RayClusters).

`cloud` holds the AWS side of both (cloud layer); `mlflow` and `ray` the Kubernetes side (cluster layer). The pure
builders import no SDK; the components load on first use."""

from typing import TYPE_CHECKING, Any

from mlplatform.infra.mlops import documents

if TYPE_CHECKING:
    from mlplatform.infra.mlops.cloud import DatabaseSpec, MlflowCloud, MlflowCloudArgs, RayCloud, RayCloudArgs
    from mlplatform.infra.mlops.mlflow import Mlflow, MlflowAccounts, MlflowAccountsArgs, MlflowArgs
    from mlplatform.infra.mlops.ray import Ray, RayArgs

__all__ = [
    "DatabaseSpec",
    "Mlflow",
    "MlflowAccounts",
    "MlflowAccountsArgs",
    "MlflowArgs",
    "MlflowCloud",
    "MlflowCloudArgs",
    "Ray",
    "RayArgs",
    "RayCloud",
    "RayCloudArgs",
    "documents",
]

_LAZY = {
    "DatabaseSpec": "cloud",
    "MlflowCloud": "cloud",
    "MlflowCloudArgs": "cloud",
    "RayCloud": "cloud",
    "RayCloudArgs": "cloud",
    "Mlflow": "mlflow",
    "MlflowArgs": "mlflow",
    "MlflowAccounts": "mlflow",
    "MlflowAccountsArgs": "mlflow",
    "Ray": "ray",
    "RayArgs": "ray",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"mlplatform.infra.mlops.{_LAZY[name]}"), name)
    raise AttributeError(name)
