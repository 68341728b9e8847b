# A stand-in for a Terraform-managed EKS foundation, run for real by `terraform apply` to write the state the
# platform adopts (tests/test_adopted_cluster.py regenerates it and compares it with the committed one).
#
# Only Terraform's built-in provider is used (terraform_data: no download, no cloud). The root module exports the
# outputs that terraform-aws-modules/vpc and terraform-aws-modules/eks publish, under the same names, the way a
# real root module re-exports them (`output "cluster_name" { value = module.eks.cluster_name }`):
#   terraform-aws-modules/terraform-aws-vpc v6.6.0, outputs.tf at 82d1929e669efef4e2ad00611b8a68e7a56e049c
#   terraform-aws-modules/terraform-aws-eks v21.19.0, outputs.tf at bef29c4d9523523e57fe898643fde2895106b339
# Ids, account (111122223333) and the CA certificate (self-signed, CN=kubernetes) are examples.

terraform {
  required_version = ">= 1.4" # terraform_data
}

resource "terraform_data" "vpc" {
  # What module "vpc" (terraform-aws-modules/vpc/aws) would have created.
  input = {
    vpc_id                      = "vpc-0b7e4c1d9a2f63e58"
    vpc_arn                     = "arn:aws:ec2:us-east-1:111122223333:vpc/vpc-0b7e4c1d9a2f63e58"
    vpc_cidr_block              = "10.60.0.0/16"
    azs                         = ["us-east-1a", "us-east-1b", "us-east-1c"]
    private_subnets             = ["subnet-0a11b22c33d44e55f", "subnet-0b22c33d44e55f66a", "subnet-0c33d44e55f66a77b"]
    private_subnets_cidr_blocks = ["10.60.0.0/19", "10.60.32.0/19", "10.60.64.0/19"]
    public_subnets              = ["subnet-0d44e55f66a77b88c", "subnet-0e55f66a77b88c99d", "subnet-0f66a77b88c99d00e"]
    public_subnets_cidr_blocks  = ["10.60.96.0/22", "10.60.100.0/22", "10.60.104.0/22"]
    natgw_ids                   = ["nat-0123456789abcdef0", "nat-0123456789abcdef1", "nat-0123456789abcdef2"]
  }
}

resource "terraform_data" "eks" {
  # What module "eks" (terraform-aws-modules/eks/aws, authentication_mode = "API_AND_CONFIG_MAP", enable_irsa,
  # addons vpc-cni (enableNetworkPolicy), kube-proxy, coredns; no Pod Identity agent) would have created.
  input = {
    cluster_name                       = "acme-ml"
    cluster_arn                        = "arn:aws:eks:us-east-1:111122223333:cluster/acme-ml"
    cluster_endpoint                   = "https://9F2C4B7E1A3D5F60718293A4B5C6D7E8.gr7.us-east-1.eks.amazonaws.com"
    cluster_certificate_authority_data = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSURDekNDQWZPZ0F3SUJBZ0lVTU1NTjRSQS9Bcm9hRG1nTXJlZ3I3SzdDZXZrd0RRWUpLb1pJaHZjTkFRRUwKQlFBd0ZURVRNQkVHQTFVRUF3d0thM1ZpWlhKdVpYUmxjekFlRncweU5qRXlNRFV3T0RFd01qQmFGdzB6TmpFeQpNREl3T0RFd01qQmFNQlV4RXpBUkJnTlZCQU1NQ210MVltVnlibVYwWlhNd2dnRWlNQTBHQ1NxR1NJYjNEUUVCCkFRVUFBNElCRHdBd2dnRUtBb0lCQVFDLzI3UWcvN3JSWTFYVVZPZURzVGJDNVpCRk42YWpRdERHUmhnT056K1EKV24wUVFDckE3SXBwa2p1ekhWalZCRElSNGRiajQwOWJOREh2cFd5L1VxK0N3ZTRQa3VMY29tZCtBMWhFa0EyTgovUlIxTVZLMDVoYUttM3krR1orMHBCVG5Lb1N5NytwRThBdHRNZFBGcWI0KzhJRUxtVUwzYWZteGVZeTZ0bjljCit5VkRWMW1GSzRiYUhlSDZRVkVVQjBKd2d6WnlYd1pSYVNCOFVYMS9kbkkwVnBFQkc1WDluTEZqTis4WUQ4UzEKaXR2RUVISWdVaW5GNWxOTmtZdG1RaStqdCt4SnhZdDUybE5CS1FKaXVhN1dHMjJqUnNMMW56dGN1S0w0Wng1NApmUlNLTWRHUytacXhVRlhwM1AwSEVNOTFydHhTYlNsM1EvUjFLMHZEVFN0TEFnTUJBQUdqVXpCUk1CMEdBMVVkCkRnUVdCQlFtcEh4dFpOWTJDdGxUSUpwNXJ4NGx5VnFVOWpBZkJnTlZIU01FR0RBV2dCUW1wSHh0Wk5ZMkN0bFQKSUpwNXJ4NGx5VnFVOWpBUEJnTlZIUk1CQWY4RUJUQURBUUgvTUEwR0NTcUdTSWIzRFFFQkN3VUFBNElCQVFDbAp0aWsxbGJZanhBa2lRcXJwV0l3bC9ROGFDNUlaNVJNdzRQVW9ucG0xY2xjTUdTOWh0MXA4VlJWdThkYmtCUmlzCmlhaEkvN09YUmNURm1RaVgxeGdwdjRqeFFlVUlQM3BXb3o1bFdXZHVSSE5vZExBSXdHT0c2elRaSDRpaFBBbVIKWWxDdGNKcnFGVW1TbGc3T3BuNEI0QmhVKzZWZVllL1kyUkZmWDVHK1U3V2ZkRFBhWFRXVGdnNWlVUHdNa2pWNgpiUnhBdStJZ2kyeitEVWpmaEt0S1NvQ205TEZzbXY1ZE4zdFFHbHl0UVlhNU1JMzc1d281NHcyMTBLNEFhVDJtCnpnUG1qckd5THZUZXlvNUhIZW5RUHRwUmZIZnV5Y0Z3OFJ2V3k2NU02bVJicHZYMjBKQk1nUUtBc2ZkTTNvREMKNmRja2ljNVlyOTVlVnlSbHVUTCsKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
    cluster_version                    = "1.35"
    cluster_platform_version           = "eks.8"
    cluster_status                     = "ACTIVE"
    cluster_primary_security_group_id  = "sg-0a1b2c3d4e5f60718"
    cluster_security_group_id          = "sg-0b2c3d4e5f6071829"
    node_security_group_id             = "sg-0c3d4e5f607182930"
    cluster_service_cidr               = "172.20.0.0/16"
    cluster_ip_family                  = "ipv4"
    oidc_issuer                        = "https://oidc.eks.us-east-1.amazonaws.com/id/9F2C4B7E1A3D5F60718293A4B5C6D7E8"
    oidc_provider_arn                  = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/9F2C4B7E1A3D5F60718293A4B5C6D7E8"
    node_group_role_name               = "system-eks-node-group-20260105093012345600000001"
  }
}

# --- terraform-aws-modules/vpc outputs ----------------------------------------------------------------------------

output "vpc_id" {
  description = "The ID of the VPC"
  value       = terraform_data.vpc.output.vpc_id
}

output "vpc_arn" {
  description = "The ARN of the VPC"
  value       = terraform_data.vpc.output.vpc_arn
}

output "vpc_cidr_block" {
  description = "The CIDR block of the VPC"
  value       = terraform_data.vpc.output.vpc_cidr_block
}

output "azs" {
  description = "A list of availability zones specified as argument to this module"
  value       = terraform_data.vpc.output.azs
}

output "private_subnets" {
  description = "List of IDs of private subnets"
  value       = terraform_data.vpc.output.private_subnets
}

output "private_subnets_cidr_blocks" {
  description = "List of cidr_blocks of private subnets"
  value       = terraform_data.vpc.output.private_subnets_cidr_blocks
}

output "public_subnets" {
  description = "List of IDs of public subnets"
  value       = terraform_data.vpc.output.public_subnets
}

output "public_subnets_cidr_blocks" {
  description = "List of cidr_blocks of public subnets"
  value       = terraform_data.vpc.output.public_subnets_cidr_blocks
}

output "natgw_ids" {
  description = "List of NAT Gateway IDs"
  value       = terraform_data.vpc.output.natgw_ids
}

# --- terraform-aws-modules/eks outputs ----------------------------------------------------------------------------

output "cluster_arn" {
  description = "The Amazon Resource Name (ARN) of the cluster"
  value       = terraform_data.eks.output.cluster_arn
}

output "cluster_certificate_authority_data" {
  description = "Base64 encoded certificate data required to communicate with the cluster"
  value       = terraform_data.eks.output.cluster_certificate_authority_data
}

output "cluster_endpoint" {
  description = "Endpoint for your Kubernetes API server"
  value       = terraform_data.eks.output.cluster_endpoint
}

output "cluster_name" {
  description = "The name of the EKS cluster"
  value       = terraform_data.eks.output.cluster_name
}

output "cluster_oidc_issuer_url" {
  description = "The URL on the EKS cluster for the OpenID Connect identity provider"
  value       = terraform_data.eks.output.oidc_issuer
}

output "cluster_version" {
  description = "The Kubernetes version for the cluster"
  value       = terraform_data.eks.output.cluster_version
}

output "cluster_platform_version" {
  description = "Platform version for the cluster"
  value       = terraform_data.eks.output.cluster_platform_version
}

output "cluster_status" {
  description = "Status of the EKS cluster. One of `CREATING`, `ACTIVE`, `DELETING`, `FAILED`"
  value       = terraform_data.eks.output.cluster_status
}

output "cluster_primary_security_group_id" {
  description = "Cluster security group that was created by Amazon EKS for the cluster. Managed node groups use this security group for control-plane-to-data-plane communication. Referred to as 'Cluster security group' in the EKS console"
  value       = terraform_data.eks.output.cluster_primary_security_group_id
}

output "cluster_service_cidr" {
  description = "The CIDR block where Kubernetes pod and service IP addresses are assigned from"
  value       = terraform_data.eks.output.cluster_service_cidr
}

output "cluster_ip_family" {
  description = "The IP family used by the cluster (e.g. `ipv4` or `ipv6`)"
  value       = terraform_data.eks.output.cluster_ip_family
}

output "cluster_security_group_id" {
  description = "ID of the cluster security group"
  value       = terraform_data.eks.output.cluster_security_group_id
}

output "node_security_group_id" {
  description = "ID of the node shared security group"
  value       = terraform_data.eks.output.node_security_group_id
}

output "oidc_provider" {
  description = "The OpenID Connect identity provider (issuer URL without leading `https://`)"
  value       = replace(terraform_data.eks.output.oidc_issuer, "https://", "")
}

output "oidc_provider_arn" {
  description = "The ARN of the OIDC Provider if `enable_irsa = true`"
  value       = terraform_data.eks.output.oidc_provider_arn
}

# Not a module output: the root module's own, from module.eks.eks_managed_node_groups["system"].iam_role_name (the
# role of the node group that runs the platform's controllers).
output "system_node_group_iam_role_name" {
  description = "IAM role name of the system managed node group"
  value       = terraform_data.eks.output.node_group_role_name
}
