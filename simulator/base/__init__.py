"""Leaves: the clock, the seed and its streams, durations, shipped resources, the version. Imports nothing of
ours but errors.
"""
