"""Team tenancy: namespaces with quota, defaults, network policies, RBAC and a lake prefix each. The pure builders
import no SDK; the component loads on first use."""

from typing import TYPE_CHECKING, Any

from mlplatform.infra.tenancy import documents

if TYPE_CHECKING:
    from mlplatform.infra.tenancy.cloud import TenantAccess, TenantsCloud, TenantsCloudArgs
    from mlplatform.infra.tenancy.component import Tenants, TenantsArgs

__all__ = ["TenantAccess", "Tenants", "TenantsArgs", "TenantsCloud", "TenantsCloudArgs", "documents"]


def __getattr__(name: str) -> Any:
    if name in ("Tenants", "TenantsArgs"):
        from mlplatform.infra.tenancy import component

        return getattr(component, name)
    if name in ("TenantAccess", "TenantsCloud", "TenantsCloudArgs"):
        from mlplatform.infra.tenancy import cloud

        return getattr(cloud, name)
    raise AttributeError(name)
