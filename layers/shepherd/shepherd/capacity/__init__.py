"""Capacity of endpoint variants: instance counts and their Application Auto Scaling registration (no boto3)."""
