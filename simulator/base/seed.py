"""One seed, one random stream per purpose: the same seed gives the same ids, whatever else draws.

A :class:`Seed` owns every random stream a simulator uses, each derived from the seed and a purpose name
(``random.Random(f"{seed}:{purpose}")``), so drawing from one never shifts another: reading an account's
signing keys, creating a transaction or a fault scenario's coin flips leave the message ids alone.
:meth:`Seed.reset` drops every stream at once; the next draw of each purpose starts again from the
(new) seed, so ``reset(seed=n)`` is the same as a fresh start with ``n``, byte for byte.

>>> s = Seed(7)
>>> s.ids(MESSAGE).new("msg") == Seed(7).ids(MESSAGE).new("msg")
True
"""

from __future__ import annotations

import random
import string

__all__ = [
    "FAULTS",
    "JTI",
    "KEYS",
    "MESSAGE",
    "NONCE",
    "ORDER",
    "PURPOSES",
    "SCHEDULE",
    "TRANSACTION",
    "Ids",
    "Seed",
]

# The purposes, each its own stream.
MESSAGE = "msg"  # message ids (publish, enqueue, batch, cron fires, DLQ retries, callbacks)
SCHEDULE = "scd"  # schedule ids
KEYS = "keys"  # signing keys: a stream per account (Seed.keyed), drawn when it is first seen and on rotation
TRANSACTION = "tx"  # Sapiom transaction, payment, cost and fact ids
NONCE = "nonce"  # x402 payment nonces
JTI = "jti"  # the jti claim of each Upstash-Signature
FAULTS = "faults"  # fault scenarios' probability draws
RUN = "run"  # workflow run ids
ORDER = "order"  # the shuffles of same-instant events when the engine explores orderings (order="shuffle")
PURPOSES = (MESSAGE, SCHEDULE, KEYS, TRANSACTION, NONCE, JTI, FAULTS, RUN, ORDER)

_ALPHABET = string.ascii_letters + string.digits
# Each random byte picks a base62 character (bytes 248-255 wrap around: a slight bias ids can afford).
_BYTE_TO_BASE62 = bytes((_ALPHABET[i % 62]).encode()[0] for i in range(256))


class Ids:
    """Ids drawn from one stream: ``Ids(random.Random(1)).new("msg")`` -> ``"msg_..."`` (22 base62 chars)."""

    __slots__ = ("_rng",)

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def token(self, length: int = 22) -> str:
        """A random base62 string (one per request: kept cheap with a byte translation table)."""
        return self._rng.randbytes(length).translate(_BYTE_TO_BASE62).decode("ascii")

    def new(self, prefix: str, length: int = 22) -> str:
        """A new id such as ``msg_...``, ``scd_...``, ``tx_...``."""
        return f"{prefix}_{self.token(length)}"

    def hex(self, nbytes: int) -> str:
        """``nbytes`` random bytes as ``0x``-prefixed hex."""
        return "0x" + self._rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()


class Seed:
    """The seed of one simulator and its named streams (see the module docstring)."""

    __slots__ = ("_ids", "_streams", "value")

    def __init__(self, value: int = 0) -> None:
        self.value = value
        self._streams: dict[str, random.Random] = {}
        self._ids: dict[str, Ids] = {}

    def reset(self, value: int | None = None) -> None:
        """Forget every stream; with ``value``, the seed changes too. Each purpose restarts on its next draw."""
        if value is not None:
            self.value = value
        self._streams.clear()
        self._ids.clear()

    def stream(self, purpose: str) -> random.Random:
        """The stream of ``purpose`` (created on first use since the last reset)."""
        rng = self._streams.get(purpose)
        if rng is None:
            rng = self._streams[purpose] = random.Random(f"{self.value}:{purpose}")
        return rng

    def ids(self, purpose: str) -> Ids:
        """Ids drawn from the stream of ``purpose``. Ask again after a reset (the old object keeps the old stream)."""
        ids = self._ids.get(purpose)
        if ids is None:
            ids = self._ids[purpose] = Ids(self.stream(purpose))
        return ids

    def keyed(self, purpose: str, key: str) -> Ids:
        """Ids of a stream of their own for ``(purpose, key)``, e.g. one account's signing keys: what it
        draws depends on the seed and ``key`` only, never on what else was drawn before (a new object,
        starting afresh, each call)."""
        return Ids(random.Random(f"{self.value}:{purpose}:{key}"))

    def __repr__(self) -> str:
        return f"Seed({self.value})"
