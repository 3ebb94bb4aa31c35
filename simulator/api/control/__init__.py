"""The /_sim control plane surface."""
