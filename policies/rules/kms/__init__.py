"""AWS KMS keys."""
