"""The single source of cost tags and Kubernetes cost labels.

Every AWS resource gets the configured cost tags through the provider's `defaultTags`. Where default tags do not
reach (launch template tag specifications, Karpenter EC2NodeClass `tags`, volumes created by the EBS CSI driver)
components receive the same mapping explicitly from here. Kubernetes objects carry `team`, `cost-center` and
`environment` labels built here too, so a bill and a dashboard group spend the same way.
"""

from mlplatform.infra.tagging.tags import (
    COST_LABEL_KEYS,
    cost_labels,
    effective_tags,
    missing_required_tags,
    platform_tags,
)

__all__ = ["COST_LABEL_KEYS", "cost_labels", "effective_tags", "missing_required_tags", "platform_tags"]
