"""Benchmarks of qstash-sim: ``python -m benchmarks`` (or ``make bench``) runs them and rewrites BENCHMARKS.md."""
