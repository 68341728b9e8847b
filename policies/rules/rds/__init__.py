"""Amazon RDS instances."""
