"""AWS IAM: policies, trust policies, users."""
