"""WHEN things happen: one event heap on one clock, attempt rules, retries and backoff, cron, signing, transports."""
