"""Names shared by the config schema, the components and the tools (no imports, nothing else)."""

PROJECT = "ml-platform"
"""The Pulumi project name, and the namespace of the platform's config keys (`ml-platform:<section>`)."""
