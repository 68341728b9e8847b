"""Names shared by the config schema, the components and the tools (no imports, nothing else)."""

PROJECT = "ml-platform"
"""The Pulumi project name, and the namespace of the platform's config keys (`ml-platform:<section>`)."""

CLUSTER_PROJECT = "ml-platform-cluster"
"""The cluster layer's Pulumi project: every Kubernetes object, through a provider built from the cloud layer's
outputs (read with a StackReference). It reads the same stack files (`stacks/`) as the cloud layer."""

CLUSTER_LAYER_DIR = "cluster"
"""Where the cluster layer's Pulumi.yaml lives, relative to the repository root."""
