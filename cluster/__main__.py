"""The cluster layer (Pulumi project `ml-platform-cluster`): every Kubernetes object, deployed after the cloud
layer (`pulumi -C cluster up -s STACK`, or `mlp runner STACK up` for a private endpoint). See
`infra/program.py`."""

import sys
from pathlib import Path

# Pulumi runs this folder as the program; the component library is the repository root's `infra/`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlplatform.infra.program import run_cluster_layer

run_cluster_layer()
