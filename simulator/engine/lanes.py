"""Lanes: deliveries that must go one at a time, in order (the messages of one Upstash Workflow run).

A lane is named by a key the core gives for a message (``Engine.lane_of``: the run of a workflow message,
``None`` for every other message). At most one message of a lane is being attempted at once: from the
moment it passes the lane until its outcome is applied (a retry waiting for its backoff holds no lane).
The others wait in the lane, first come first out, and start at the instant it frees. So same-instant
deliveries of a run (parallel steps, a notify and a wait) reach the endpoint one after the other, in the
order they fell due (or in a seeded shuffle of it, ``Engine.order = "shuffle"``), never racing on real
sockets, and a run is reproducible from the seed.

Lanes compose with the other gates: a message takes its lane first, then its queue slot is already
taken, then flow control, then the cap on attempts on the wire.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable

from qstash_sim.domain.message import FINAL_STATES, Message

__all__ = ["Lanes"]


class Lanes:
    """The lanes of one engine: who holds each one, and who waits."""

    def __init__(self) -> None:
        self.lane_of: Callable[[Message], Hashable | None] | None = None
        self._holder: dict[Hashable, tuple[str, str]] = {}  # lane -> (account, message id) holding it
        self._held: dict[tuple[str, str], Hashable] = {}  # (account, message id) -> the lane it holds
        self._waiting: dict[Hashable, deque[Message]] = {}

    def clear(self) -> None:
        """Forget every lane (the engine's reset)."""
        self._holder.clear()
        self._held.clear()
        self._waiting.clear()

    def take(self, msg: Message) -> bool:
        """Whether ``msg`` may be attempted now: its lane is free (then it holds it) or already its own; if
        not, it waits in the lane. A message in no lane always may."""
        if self.lane_of is None:
            return True
        lane = self.lane_of(msg)
        if lane is None:
            return True
        mkey = (msg.account, msg.message_id)
        holder = self._holder.get(lane)
        if holder is None or holder == mkey:
            self._holder[lane] = mkey
            self._held[mkey] = lane
            return True
        self._waiting.setdefault(lane, deque()).append(msg)
        return False

    def free(self, msg: Message) -> Message | None:
        """``msg``'s attempt is over (or it ended without one): its lane goes to the next message waiting
        in it, which holds it from now on (returned, to be armed now), if any."""
        if not self._held:
            return None
        lane = self._held.pop((msg.account, msg.message_id), None)
        if lane is None:
            return None
        del self._holder[lane]
        waiting = self._waiting.get(lane)
        while waiting:
            nxt = waiting.popleft()
            if nxt.state not in FINAL_STATES:
                if not waiting:
                    del self._waiting[lane]
                nkey = (nxt.account, nxt.message_id)
                self._holder[lane] = nkey
                self._held[nkey] = lane
                return nxt
        self._waiting.pop(lane, None)
        return None

    def holding(self) -> int:
        """How many lanes are held now."""
        return len(self._holder)

    def waiting(self) -> int:
        """How many messages wait in a lane now."""
        return sum(len(w) for w in self._waiting.values())
