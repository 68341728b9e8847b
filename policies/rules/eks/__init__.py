"""Amazon EKS: cluster endpoint, encryption, logging, versions, authentication; managed node groups."""
