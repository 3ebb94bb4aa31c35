"""Fault scenarios: the file format and loader, the runtime (rules, scripted destinations, limiter), the feature."""
