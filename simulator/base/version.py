"""The version of qstash-sim (also the distribution's, checked by a test)."""

__version__ = "0.1.0"
