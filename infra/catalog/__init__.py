"""Dated facts as data: GPU instance specs, EC2 prices, pinned versions. Pure lookups, no I/O beyond the package."""
