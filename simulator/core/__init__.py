"""WHAT happens: the surface-neutral service (publish, queues, schedules, keys) and the Feature interface."""
