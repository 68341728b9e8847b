"""VPC, subnets, NAT, endpoints and flow logs, or an adopted existing VPC.

The pure subnet planner imports nothing heavy; the components (which import the AWS SDK) load on first use, so
that validating a config never pays for the SDK.
"""

from typing import TYPE_CHECKING, Any

from infra.network.cidr import SubnetPlan, SubnetPlanError, plan_subnets

if TYPE_CHECKING:
    from infra.network.component import Network, NetworkArgs

__all__ = ["Network", "NetworkArgs", "SubnetPlan", "SubnetPlanError", "plan_subnets"]


def __getattr__(name: str) -> Any:
    if name in ("Network", "NetworkArgs"):
        from infra.network import component

        return getattr(component, name)
    raise AttributeError(name)
