"""What the fixtures yield: :class:`QstashSim` (sync) and :class:`AsyncQstashSim`, over one :class:`SimServer`.

Every read goes to the server's loop (``call_soon``), so it is thread-safe from the test thread; a read
made *on* the loop (inside a ``run_until`` predicate) runs directly. Errors the server caught (the
dispatcher's ``extensions["errors"]``, the engine's ``errors``) are raised again in the test by the next
call, and at teardown. Assertions settle first, then check a snapshot (:mod:`.assertions`).

This module never imports pytest: ``QstashSim.open(SimServer.start(), SimConfig(seed=7))`` works anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json as jsonlib
import re
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from qstash_sim.base.clock import format_ms
from qstash_sim.base.durations import to_ms
from qstash_sim.domain.account import SigningKeys
from qstash_sim.domain.journal import JournalEntry
from qstash_sim.domain.ledger import LedgerEntry
from qstash_sim.domain.message import Delivery, DlqEntry, Message
from qstash_sim.domain.queue import Queue
from qstash_sim.domain.schedule import Schedule
from qstash_sim.simulator import Simulator

from . import assertions as _a
from .callbacks import AsyncCallbackAssertions, CallbackAssertions
from .inflight import AsyncMaxInFlight, MaxInFlight
from .native import AsyncClient, NativeQstash, SyncClient
from .process_clock import process_time
from .server import ScenarioSource, SimConfig, SimServer
from .workflow import AsyncWorkflowAssertions, WorkflowAssertions

__all__ = ["AsyncQstashSim", "AsyncSimClock", "QstashSim", "SimClock"]

T = TypeVar("T")
V = TypeVar("V")
Delta = timedelta | int | float | str
When = int | datetime | str


# ---------------------------------------------------------------------------------------------- core


@dataclass(slots=True)
class _Core:
    """What both handles share: the server, the config, and which server errors were already raised."""

    server: SimServer
    config: SimConfig
    reported: set[int] = field(default_factory=set)
    # Coroutines the async handle's verbs returned: one never awaited fails the test at teardown.
    unawaited: list[tuple[str, Coroutine[Any, Any, Any]]] = field(default_factory=list)

    def track(self, name: str, coro: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
        """Remember ``coro`` (an async verb's) to check at teardown that it was awaited."""
        self.unawaited[:] = [(n, c) for n, c in self.unawaited if inspect.getcoroutinestate(c) == inspect.CORO_CREATED]
        self.unawaited.append((name, coro))
        return coro

    def check_awaited(self) -> None:
        """Raise for every async verb whose coroutine was never awaited (its check never ran)."""
        __tracebackhide__ = True
        missed = [n for n, c in self.unawaited if inspect.getcoroutinestate(c) == inspect.CORO_CREATED]
        for _, coro in self.unawaited:
            coro.close()  # no "never awaited" RuntimeWarning on top of our error
        self.unawaited.clear()
        if missed:
            names = ", ".join(f"qstash_sim_async.{n}(...)" for n in missed)
            raise _a.QstashSimAssertionError(
                f"{names} {'was' if len(missed) == 1 else 'were'} never awaited, so nothing was checked: "
                f"write `await qstash_sim_async.{missed[0]}(...)`"
            )

    @property
    def sim(self) -> Simulator:
        return self.server.sim

    def on_loop(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop (directly when already there, e.g. in a ``run_until`` predicate)."""
        __tracebackhide__ = True
        try:
            here = asyncio.get_running_loop() is self.server.thread.loop
        except RuntimeError:
            here = False
        result = fn() if here else self.server.thread.call_soon(fn)
        self.reraise()
        return result

    def reraise(self) -> None:
        """Raise, once, the first error the server caught since the last check."""
        __tracebackhide__ = True
        for exc in list(self.sim.errors):
            if id(exc) not in self.reported:
                self.reported.add(id(exc))
                exc.add_note(f"(raised inside the qstash-sim server thread; {self.config.describe()})")
                raise exc

    def call(self, make: Callable[[], Awaitable[T]], timeout: float | None = 120) -> T:
        """Run a coroutine on the server's loop and wait for it from this thread.

        Refused inside a running event loop (an async test): waiting here would block that loop, and a
        destination it serves could not answer the deliveries being waited for.
        """
        __tracebackhide__ = True
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and running is not self.server.thread.loop:
            raise RuntimeError(
                "qstash-sim: the sync qstash_sim fixture was used inside an async test; waiting would block this "
                "test's event loop (and any endpoint it serves). Use qstash_sim_async and await its verbs: "
                "`await qstash_sim_async.clock.advance(...)`, `await qstash_sim_async.assert_delivered(...)`"
            )
        result = self.server.thread.call(make, timeout)
        self.reraise()
        return result

    async def acall(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine on the server's loop and await it from another loop."""
        __tracebackhide__ = True
        coro: Any = make()  # an Awaitable from the simulator's coroutine methods
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.server.thread.loop)
        result: T = await asyncio.wrap_future(fut)
        self.reraise()
        return result

    def load_scenario(self, source: ScenarioSource) -> Any:
        """Load ``source`` into the simulator now."""
        return self.on_loop(lambda: self.sim.load_scenario(source))

    # -- snapshots, taken on the loop

    def snapshot(self) -> tuple[list[Delivery], list[Message], list[DlqEntry], int]:
        """Inbox, messages, DLQ entries and now, read together in one hop."""

        def take() -> tuple[list[Delivery], list[Message], list[DlqEntry], int]:
            sim = self.sim
            dlq = [e for acc in sim.world.accounts for e in acc.dlq.values()]
            return list(sim.world.inbox), sim.messages(), dlq, sim.clock.now_ms()

        return self.on_loop(take)

    def finish(self) -> None:
        """Teardown: let work due now finish (so nothing crosses into the next test), then re-raise, then fail
        for an async verb that was never awaited."""
        # The test's outcome matters more than a late delivery's: a failure to settle is not reported.
        with contextlib.suppress(Exception):
            self.server.thread.call(self.sim.settle, timeout=60)
        self.reraise()
        self.check_awaited()


def _awaited(cls: type[V]) -> type[V]:
    """Class decorator: each ``async def`` verb of ``cls`` registers its coroutine with the core, so a verb
    called without ``await`` fails the test at teardown instead of passing with a RuntimeWarning."""
    for name, fn in list(vars(cls).items()):
        if inspect.iscoroutinefunction(fn):

            def wrap(fn: Callable[..., Coroutine[Any, Any, Any]], name: str = name) -> Callable[..., Any]:
                @functools.wraps(fn)
                def verb(self: Any, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
                    core: _Core = self._core
                    return core.track(name, fn(self, *args, **kwargs))

                return verb

            setattr(cls, name, wrap(fn))
    return cls


def _ms(t: When) -> int:
    if isinstance(t, str):
        t = datetime.fromisoformat(t.replace("Z", "+00:00"))
        if t.tzinfo is None:
            t = t.replace(tzinfo=UTC)
    if isinstance(t, datetime):
        if t.tzinfo is None:
            raise ValueError(f"datetime {t!r} has no timezone; pass an aware datetime (tzinfo=UTC)")
        return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    if isinstance(t, bool) or not isinstance(t, int):
        raise TypeError(f"time must be int ms, an aware datetime or an ISO string, got {type(t).__name__}")
    return t


def _forward(core: _Core, when: When) -> int:
    """How far (ms) ``move_to(when)`` goes; moving backwards is a ``ValueError``."""
    target, now = _ms(when), core.on_loop(core.sim.clock.now_ms)
    if target < now:
        raise ValueError(f"cannot move the clock backwards from {format_ms(now)} to {format_ms(target)}")
    return target - now


class _Reads(NativeQstash):
    """The read side both handles share: addresses (native QStash's too: :mod:`.native`) and snapshots of the
    simulator's state."""

    def __init__(self, core: _Core) -> None:
        self._core = core

    @property
    def sim(self) -> Simulator:
        """The :class:`Simulator` itself (state lives on the server's thread: read it via this handle)."""
        return self._core.sim

    @property
    def config(self) -> SimConfig:
        """The configuration this test runs with (seed, scenarios, payment, api key)."""
        return self._core.config

    @property
    def seed(self) -> int:
        """The seed in use; ``--qstash-sim-seed=<seed>`` replays a run."""
        return self._core.config.seed

    @property
    def url(self) -> str:
        """The Sapiom gateway base: ``http://127.0.0.1:PORT/v1/qstash`` (native QStash: :attr:`qstash_url`)."""
        return f"{self._core.server.origin}/v1/qstash"

    @property
    def sapiom_base_url(self) -> str:
        """The origin, for ``SAPIOM_BASE_URL`` (no ``/v1``): ``http://127.0.0.1:PORT``."""
        return self._core.server.origin

    @property
    def api_key(self) -> str:
        """The key to send (``Authorization: Bearer <key>``); it names the account charges go to."""
        return self._core.config.api_key

    @property
    def headers(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <api_key>"}``, ready for a client."""
        return {"Authorization": f"Bearer {self.api_key}"}

    def publish(
        self,
        destination: str,
        body: bytes | str | Any = b"",
        *,
        headers: Mapping[str, str] | None = None,
        queue: str | None = None,
    ) -> str:
        """Publish through the gateway with this test's key (enqueue with ``queue``); returns the message id.

        ``body``: bytes, text, or anything JSON-able (sent as ``application/json``).
        ``qstash_sim.publish(qstash_receiver.url("/hook"), {"orderId": 1}, headers={"Upstash-Delay": "1m"})``
        """
        hdrs = {**self.headers, **(headers or {})}
        if not isinstance(body, bytes | str):
            body = jsonlib.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        data = body.encode() if isinstance(body, str) else body
        path = f"/enqueue/{queue}/{destination}" if queue else f"/publish/{destination}"
        req = urllib.request.Request(self.url + path, data=data, method="POST", headers=hdrs)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
        try:
            with opener.open(req, timeout=30) as resp:
                return str(jsonlib.loads(resp.read())["messageId"])
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            raise AssertionError(f"publish to {destination} answered {exc.code}: {text}") from None

    @property
    def messages(self) -> list[Message]:
        """Every message, all accounts, in creation order."""
        return self._core.on_loop(self._core.sim.messages)

    def message(self, message_id: str) -> Message:
        """One message by id; ``KeyError`` naming the closest ids when unknown."""
        for m in self.messages:
            if m.message_id == message_id:
                return m
        raise KeyError(f"no message {message_id!r}; known: {[m.message_id for m in self.messages][:10]}")

    @property
    def deliveries(self) -> list[Delivery]:
        """The inbox: every request sent to a destination (virtual and real), in sending order."""
        return self._core.on_loop(lambda: list(self._core.sim.world.inbox))

    @property
    def queues(self) -> list[Queue]:
        """Every queue of every account."""
        return self._core.on_loop(lambda: [q for a in self._core.sim.world.accounts for q in a.queues.values()])

    @property
    def schedules(self) -> list[Schedule]:
        """Every schedule of every account."""
        return self._core.on_loop(lambda: [s for a in self._core.sim.world.accounts for s in a.schedules.values()])

    @property
    def dlq(self) -> list[DlqEntry]:
        """Every DLQ entry of every account."""
        return self._core.on_loop(lambda: [e for a in self._core.sim.world.accounts for e in a.dlq.values()])

    @property
    def ledger(self) -> list[LedgerEntry]:
        """Every charge, in order."""
        return self._core.on_loop(lambda: list(self._core.sim.world.ledger.entries))

    def spent(self, agent_or_account: str | None = None) -> Decimal:
        """Dollars spent by an agent (or, if no agent has that name, an account); all of it with ``None``."""
        entries = self.ledger
        if agent_or_account is not None:
            mine = [e for e in entries if e.agent == agent_or_account]
            entries = mine or [e for e in entries if e.account == agent_or_account]
        return sum((e.amount for e in entries), Decimal(0))

    @property
    def journal(self) -> list[JournalEntry]:
        """Every inbound request, attempt, cron fire and warning, in order."""
        return self._core.on_loop(lambda: list(self._core.sim.world.journal.entries))

    @property
    def signing_keys(self) -> SigningKeys:
        """The ``api_key`` account's signing keys (``current`` signs ``Upstash-Signature``)."""
        return self.signing_keys_of(self.api_key)

    def signing_keys_of(self, account: str) -> SigningKeys:
        """Another account's signing keys (created with the account if new)."""
        return self._core.on_loop(lambda: self._core.sim.account(account).signing_keys)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} {self._core.config.describe()}>"


# ---------------------------------------------------------------------------------------------- sync


class _ClockReads:
    """What both clock views read: the virtual now (plain reads, even from async tests)."""

    def __init__(self, core: _Core) -> None:
        self._core = core

    @property
    def now_ms(self) -> int:
        """Virtual now, integer ms since the Unix epoch."""
        return self._core.on_loop(self._core.sim.clock.now_ms)

    @property
    def now(self) -> datetime:
        """Virtual now as an aware UTC ``datetime`` (starts at 2026-01-01T00:00:00Z)."""
        return datetime.fromtimestamp(self.now_ms / 1000, tz=UTC)


class SimClock(_ClockReads):
    """The simulator's virtual clock, seen from a test (time-machine's vocabulary, time as ms)."""

    def advance(self, delta: Delta) -> int:
        """Move forward by ``delta`` (``"31h"``, seconds, ``timedelta``), running every delivery, retry and
        cron fire due on the way, in order. Returns the new time in ms."""
        to_ms(delta)  # TypeError/ValueError here, in the test, rather than on the server's loop
        return self._core.call(lambda: self._core.sim.advance(delta))

    shift = advance

    def move_to(self, when: When) -> int:
        """Jump forward to ``when`` (ms, aware ``datetime`` or ISO text such as ``"2026-01-08T09:00Z"``)."""
        return self.advance(timedelta(milliseconds=_forward(self._core, when)))

    def process_time(self) -> AbstractContextManager[None]:
        """``with clock.process_time():`` the process's ``time.time()`` follows the virtual clock
        (:mod:`conftest_plugin.process_clock`), for application code that runs in the test's process."""
        return process_time(self._core)

    def __repr__(self) -> str:
        return f"<SimClock {format_ms(self.now_ms)}>"


class QstashSim(_Reads, CallbackAssertions, MaxInFlight, WorkflowAssertions, SyncClient):
    """A clean simulator for one test: addresses, virtual clock, state, and domain assertions.

    >>> mid = publish(qstash_sim.url, "http://127.0.0.1:1/down")   # a closed port: every attempt fails
    >>> qstash_sim.clock.advance("31h")
    >>> qstash_sim.assert_in_dlq(mid)
    """

    def __init__(self, server: SimServer, config: SimConfig) -> None:
        super().__init__(_Core(server, config))
        self.clock = SimClock(self._core)

    @classmethod
    def open(cls, server: SimServer, config: SimConfig) -> QstashSim:
        """Prepare ``server`` for ``config`` (reset, scenarios, payment) and return the handle for one test."""
        server.prepare(config)
        return cls(server, config)

    @property
    def aio(self) -> AsyncQstashSim:
        """The same simulator with awaitable verbs, for async tests."""
        return AsyncQstashSim(self._core)

    def settle(self) -> None:
        """Run everything due now (deliveries of fresh publishes) without moving time."""
        self._core.call(self._core.sim.settle)

    def run_until(self, predicate: Callable[[], bool], limit: Delta = "2d") -> bool:
        """Advance event by event until ``predicate()`` holds (``True``) or ``limit`` passes (``False``).

        The predicate runs on the server's thread; reading this handle inside it is fine.
        """
        to_ms(limit)
        return self._core.call(lambda: self._core.sim.run_until(predicate, limit))

    def load_scenario(self, source: ScenarioSource) -> Any:
        """Load a scenario now: a shipped name, a path, a dict or YAML text. Its times count from now."""
        return self._core.load_scenario(source)

    # -- assertions (each settles first: what is due now has happened)

    def assert_delivered(
        self,
        to: str | re.Pattern[str] | None = None,
        *,
        times: int | None = None,
        json: Any = _a._MISSING,
        body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        message_id: str | None = None,
    ) -> list[Delivery]:
        """Assert ``times`` (default: at least one) 2xx deliveries matching every given field.

        ``to``: exact URL, glob or compiled regex; ``json``: subset match on the body's JSON.
        Returns the matching deliveries. On a miss, lists the closest deliveries and why each differs.
        """
        __tracebackhide__ = True
        flt = _a.DeliveryFilter.make(to, json, body, headers, method, message_id)
        self.settle()
        inbox, messages, _, now = self._core.snapshot()
        return _a.check_delivered(inbox, messages, flt, times, now, seed=self.seed)

    def assert_not_delivered(
        self,
        to: str | re.Pattern[str] | None = None,
        *,
        json: Any = _a._MISSING,
        body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        message_id: str | None = None,
    ) -> None:
        """Assert no 2xx delivery matches (failed attempts do not count as delivered)."""
        __tracebackhide__ = True
        flt = _a.DeliveryFilter.make(to, json, body, headers, method, message_id)
        self.settle()
        _a.check_not_delivered(self._core.snapshot()[0], flt, seed=self.seed)

    def assert_in_dlq(self, message_id: str) -> DlqEntry:
        """Assert the message failed into the DLQ; returns its entry. On a miss, shows state and history."""
        __tracebackhide__ = True
        self.settle()
        _, messages, dlq, now = self._core.snapshot()
        return _a.check_in_dlq(messages, dlq, message_id, now, seed=self.seed)

    def assert_states(self, message_id: str, states: Sequence[Any]) -> list[Any]:
        """Assert the message's history, e.g. ``["CREATED", "ACTIVE", "ERROR", "RETRY", ..., "DELIVERED"]``
        (``...`` = any run of states). Returns the history's states."""
        __tracebackhide__ = True
        self.settle()
        return _a.check_states(self._core.snapshot()[1], message_id, states, seed=self.seed)

    def assert_spent(self, agent_or_account: str, amount: Decimal | str | int | float) -> Decimal:
        """Assert an agent (or account) spent exactly ``amount`` dollars (``"0.00003"``)."""
        __tracebackhide__ = True
        self.settle()
        return _a.check_spent(self.ledger, agent_or_account, amount, seed=self.seed)

    def finish(self) -> None:
        """Teardown: settle, then raise any error the server caught and nobody saw yet."""
        self._core.finish()


# ---------------------------------------------------------------------------------------------- async


@_awaited
class AsyncSimClock(_ClockReads):
    """:class:`SimClock` with awaitable moves; ``now``/``now_ms`` stay plain reads."""

    async def advance(self, delta: Delta) -> int:
        """``await clock.advance("31h")``: see :meth:`SimClock.advance`."""
        to_ms(delta)
        return await self._core.acall(lambda: self._core.sim.advance(delta))

    shift = advance

    async def move_to(self, when: When) -> int:
        """``await clock.move_to("2026-01-08T09:00Z")``: see :meth:`SimClock.move_to`."""
        return await self.advance(timedelta(milliseconds=_forward(self._core, when)))


@_awaited
class AsyncQstashSim(_Reads, AsyncCallbackAssertions, AsyncMaxInFlight, AsyncWorkflowAssertions, AsyncClient):
    """:class:`QstashSim` for async tests: the verbs that wait on deliveries are coroutines.

    Reads (``messages``, ``deliveries``, ``dlq``...) stay plain properties: they are one quick hop to
    the server's loop and never wait on a delivery. While a verb is awaited, the test's own loop keeps
    running, so a destination served by the test (an ``aiohttp_server``) can answer.
    """

    def __init__(self, core: _Core) -> None:
        super().__init__(core)
        self.clock = AsyncSimClock(core)

    async def settle(self) -> None:
        """See :meth:`QstashSim.settle`."""
        await self._core.acall(self._core.sim.settle)

    async def run_until(self, predicate: Callable[[], bool], limit: Delta = "2d") -> bool:
        """See :meth:`QstashSim.run_until`."""
        to_ms(limit)
        return await self._core.acall(lambda: self._core.sim.run_until(predicate, limit))

    async def load_scenario(self, source: ScenarioSource) -> Any:
        """See :meth:`QstashSim.load_scenario`."""
        return self._core.load_scenario(source)

    async def assert_delivered(
        self,
        to: str | re.Pattern[str] | None = None,
        *,
        times: int | None = None,
        json: Any = _a._MISSING,
        body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        message_id: str | None = None,
    ) -> list[Delivery]:
        """See :meth:`QstashSim.assert_delivered`."""
        __tracebackhide__ = True
        flt = _a.DeliveryFilter.make(to, json, body, headers, method, message_id)
        await self.settle()
        inbox, messages, _, now = self._core.snapshot()
        return _a.check_delivered(inbox, messages, flt, times, now, seed=self.seed)

    async def assert_not_delivered(
        self,
        to: str | re.Pattern[str] | None = None,
        *,
        json: Any = _a._MISSING,
        body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        message_id: str | None = None,
    ) -> None:
        """See :meth:`QstashSim.assert_not_delivered`."""
        __tracebackhide__ = True
        flt = _a.DeliveryFilter.make(to, json, body, headers, method, message_id)
        await self.settle()
        _a.check_not_delivered(self._core.snapshot()[0], flt, seed=self.seed)

    async def assert_in_dlq(self, message_id: str) -> DlqEntry:
        """See :meth:`QstashSim.assert_in_dlq`."""
        __tracebackhide__ = True
        await self.settle()
        _, messages, dlq, now = self._core.snapshot()
        return _a.check_in_dlq(messages, dlq, message_id, now, seed=self.seed)

    async def assert_states(self, message_id: str, states: Sequence[Any]) -> list[Any]:
        """See :meth:`QstashSim.assert_states`."""
        __tracebackhide__ = True
        await self.settle()
        return _a.check_states(self._core.snapshot()[1], message_id, states, seed=self.seed)

    async def assert_spent(self, agent_or_account: str, amount: Decimal | str | int | float) -> Decimal:
        """See :meth:`QstashSim.assert_spent`."""
        __tracebackhide__ = True
        await self.settle()
        return _a.check_spent(self.ledger, agent_or_account, amount, seed=self.seed)
