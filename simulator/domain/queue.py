"""An ordered queue of one account."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class Queue:
    """An ordered queue of one account (created on first enqueue, parallelism 1)."""

    name: str
    created_ms: int
    updated_ms: int
    parallelism: int = 1
    paused: bool = False
    waiting: deque[str] = field(default_factory=deque)  # message ids not yet started, FIFO
    active: set[str] = field(default_factory=set)  # message ids started and not final (retries included)

    @property
    def lag(self) -> int:
        """Messages not yet delivered or failed."""
        return len(self.waiting) + len(self.active)
