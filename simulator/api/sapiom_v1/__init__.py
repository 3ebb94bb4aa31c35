"""Sapiom's /v1 surface: the messaging gateway and the Sapiom API."""
