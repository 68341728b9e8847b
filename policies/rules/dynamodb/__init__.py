"""Amazon DynamoDB tables (the feature store's online tables)."""
