"""Amazon EC2 and VPC: launch templates and instances, security groups, flow logs."""
