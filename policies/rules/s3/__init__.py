"""Amazon S3: bucket controls, including the cross-resource ones (pulumi-aws 7 keeps them in separate resources)."""
