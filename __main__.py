"""The cloud layer (Pulumi project `ml-platform`): everything AWS. `pulumi up` here first, then the cluster layer
(`cluster/`, which reads this stack's outputs). See `infra/program.py`."""

from mlplatform.infra.program import run_cloud_layer

run_cloud_layer()
