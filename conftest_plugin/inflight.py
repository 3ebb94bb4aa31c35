"""``assert_max_in_flight`` for the fixture handles (:class:`~conftest_plugin.handle.QstashSim` and its async
twin): how many attempts of a flow-control key or a queue were in flight at once, from the journal."""

from __future__ import annotations

from typing import Protocol

from qstash_sim.domain.journal import JournalEntry

from . import assertions as _a

__all__ = ["AsyncMaxInFlight", "MaxInFlight"]


class _Sync(Protocol):
    @property
    def journal(self) -> list[JournalEntry]: ...
    @property
    def seed(self) -> int: ...
    def settle(self) -> None: ...


class _Async(Protocol):
    @property
    def journal(self) -> list[JournalEntry]: ...
    @property
    def seed(self) -> int: ...
    async def settle(self) -> None: ...


class MaxInFlight:
    """Mixed into :class:`~conftest_plugin.handle.QstashSim`."""

    def assert_max_in_flight(self: _Sync, key_or_queue: str, n: int) -> int:
        """Assert at most ``n`` attempts of flow-control key (or queue) ``key_or_queue`` were in flight at
        once (settles first); returns the peak. On a miss, lists the attempts in flight together."""
        __tracebackhide__ = True
        self.settle()
        return _a.check_max_in_flight(self.journal, key_or_queue, n, seed=self.seed)


class AsyncMaxInFlight:
    """Mixed into :class:`~conftest_plugin.handle.AsyncQstashSim`."""

    async def assert_max_in_flight(self: _Async, key_or_queue: str, n: int) -> int:
        """See :meth:`MaxInFlight.assert_max_in_flight`."""
        __tracebackhide__ = True
        await self.settle()
        return _a.check_max_in_flight(self.journal, key_or_queue, n, seed=self.seed)
