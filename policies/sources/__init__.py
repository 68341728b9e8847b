"""Turn the three inputs (offline plans, Terraform plan JSON, CrossGuard arguments) into normalized resources."""
