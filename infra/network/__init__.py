"""VPC, subnets, NAT, endpoints and flow logs, or an adopted existing VPC.

The pure subnet planner imports nothing heavy; the components (which import the AWS SDK) load on first use, so
that validating a config never pays for the SDK.
"""

from typing import TYPE_CHECKING, Any

from mlplatform.infra.network.cidr import SubnetPlan, SubnetPlanError, plan_subnets
from mlplatform.infra.network.terraform_state import TerraformStateError, network_from_outputs, parse_state

if TYPE_CHECKING:
    from mlplatform.infra.network.adopted import AdoptedNetwork, AdoptedNetworkArgs
    from mlplatform.infra.network.component import Network, NetworkArgs
    from mlplatform.infra.terraform_reference import TerraformStateSource

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
        from mlplatform.infra.network import component

        return getattr(component, name)
    if name in ("AdoptedNetwork", "AdoptedNetworkArgs", "TerraformStateSource"):
        from mlplatform.infra.network import adopted

        return getattr(adopted, name)
    raise AttributeError(name)
