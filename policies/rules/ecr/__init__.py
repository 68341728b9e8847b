"""Amazon ECR repositories."""
