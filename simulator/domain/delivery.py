"""How the simulator delivers, whatever the message: the region it names and the longest an attempt may take.

Configuration, not state: :meth:`World.reset` keeps it (``qstash-sim serve --region/--max-timeout``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DEFAULT_REGION", "DeliverySettings", "check_region"]

# QStash's regions are EU-CENTRAL-1 (qstash.upstash.io, qstash-eu-central-1.upstash.io) and US-EAST-1; the
# default host is the EU one, so that is what a delivery names unless told otherwise.
DEFAULT_REGION = "EU-CENTRAL-1"
_REGION_RE = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,62}$")


def check_region(text: str) -> str:
    """``"us_east_1"`` -> ``"US-EAST-1"`` (upper case, ``_`` as ``-``, as the TS SDK normalises
    ``QSTASH_REGION``); ``ValueError`` naming the rule for anything else (it goes into a header)."""
    region = text.strip().upper().replace("_", "-")
    if not _REGION_RE.match(region):
        raise ValueError(
            f"a region is letters, digits and '-' (1-63 characters, e.g. EU-CENTRAL-1 or US-EAST-1), got {text!r}"
        )
    return region


@dataclass(slots=True)
class DeliverySettings:
    """``region``: the ``Upstash-Region`` header of every delivery. ``max_timeout_ms``: the cap on every
    attempt's timeout (a message's ``Upstash-Timeout``), real socket or virtual answer; ``None``: no cap."""

    region: str = DEFAULT_REGION
    max_timeout_ms: int | None = None

    def __post_init__(self) -> None:
        self.region = check_region(self.region)
        cap = self.max_timeout_ms
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap <= 0):
            raise ValueError(f"max_timeout_ms must be None or a positive integer (ms), got {cap!r}")

    def timeout_ms(self, asked_ms: int) -> int:
        """What an attempt of a message with timeout ``asked_ms`` waits: ``asked_ms``, capped."""
        cap = self.max_timeout_ms
        return asked_ms if cap is None else min(asked_ms, cap)
