"""Elastic Load Balancing v2."""
