"""ML platform and cost rules: cost tags, GPU pools, budgets, ML service exposure, data protection."""
