"""The rules, one per module, grouped by service (the path mirrors the resource type)."""
