"""qstash-sim: a contract-testing mock server and simulator for Sapiom's messaging API."""

from __future__ import annotations

__version__ = "0.1.0"
