"""The S3 data lake: KMS key, zone buckets with encryption, versioning, public access block, TLS-only policy,
lifecycle and access logging. The pure builders import no SDK; the component loads on first use."""

from typing import TYPE_CHECKING, Any

from mlplatform.infra.data import documents
from mlplatform.infra.data.documents import ZoneSpec

if TYPE_CHECKING:
    from mlplatform.infra.data.component import DataLake, DataLakeArgs

__all__ = ["DataLake", "DataLakeArgs", "ZoneSpec", "documents"]


def __getattr__(name: str) -> Any:
    if name in ("DataLake", "DataLakeArgs"):
        from mlplatform.infra.data import component

        return getattr(component, name)
    raise AttributeError(name)
