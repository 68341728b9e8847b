"""VPC, subnets, NAT, endpoints and flow logs, or an adopted existing VPC.

The pure subnet planner imports nothing heavy; the components (which import the AWS SDK) load on first use, so
that validating a config never pays for the SDK.
"""

from typing import TYPE_CHECKING, Any

from infra.network.cidr import SubnetPlan, SubnetPlanError, plan_subnets
from infra.network.terraform_state import TerraformStateError, network_from_outputs, parse_state

if TYPE_CHECKING:
    from infra.network.adopted import AdoptedNetwork, AdoptedNetworkArgs
    from infra.network.component import Network, NetworkArgs
    from infra.terraform_reference import TerraformStateSource

__all__ = [
    "AdoptedNetwork",
    "AdoptedNetworkArgs",
    "Network",
    "NetworkArgs",
    "SubnetPlan",
    "SubnetPlanError",
    "TerraformStateError",
    "TerraformStateSource",
    "network_from_outputs",
    "parse_state",
    "plan_subnets",
]


def __getattr__(name: str) -> Any:
    if name in ("Network", "NetworkArgs"):
        from infra.network import component

        return getattr(component, name)
    if name in ("AdoptedNetwork", "AdoptedNetworkArgs", "TerraformStateSource"):
        from infra.network import adopted

        return getattr(adopted, name)
    raise AttributeError(name)
