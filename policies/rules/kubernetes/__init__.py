"""Kubernetes workloads and Helm releases."""
