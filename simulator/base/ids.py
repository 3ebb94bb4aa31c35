"""Seeded identifiers: the same seed gives the same ids, whatever else draws random numbers.

Each purpose has its own stream derived from the seed, so that adding a fault scenario (which draws
from the ``faults`` stream) never changes the message ids a test sees.
"""

from __future__ import annotations

import random
import string

_ALPHABET = string.ascii_letters + string.digits
# Each random byte picks a base62 character (bytes 248-255 wrap around: a slight bias ids can afford).
_BYTE_TO_BASE62 = bytes((_ALPHABET[i % 62]).encode()[0] for i in range(256))


class Ids:
    """Id factory. ``Ids(7).new("msg")`` -> ``"msg_2Lq..."`` (deterministic for seed 7)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        """Restart every stream from the seed."""
        self._rng = random.Random(f"{self.seed}:ids")
        self._counter = 0

    def token(self, length: int = 22) -> str:
        """A random base62 string (one id per request: kept cheap with a byte translation table)."""
        return self._rng.randbytes(length).translate(_BYTE_TO_BASE62).decode("ascii")

    def new(self, prefix: str, length: int = 22) -> str:
        """A new id such as ``msg_...``, ``scd_...``, ``tx_...``."""
        return f"{prefix}_{self.token(length)}"

    def hex(self, nbytes: int) -> str:
        """``nbytes`` random bytes as ``0x``-prefixed hex."""
        return "0x" + self._rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()

    def sequence(self) -> int:
        """A monotonically increasing integer (1, 2, ...)."""
        self._counter += 1
        return self._counter


def stream(seed: int, purpose: str) -> random.Random:
    """An independent random stream for ``purpose`` (e.g. ``"faults"``), reproducible from ``seed``."""
    return random.Random(f"{seed}:{purpose}")
