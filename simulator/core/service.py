"""The :class:`Simulator` facade: one object that owns the world, the engine and the rules.

The HTTP layer calls one method here per operation; tests and the pytest plugin call the same methods.
Every method is synchronous and cheap except the clock-moving ones (``advance``, ``settle``,
``run_until``), which are coroutines because deliveries are real HTTP requests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qstash_sim.base.clock import Clock, RealClock, VirtualClock
from qstash_sim.core.world import DEFAULT_ACCOUNT, World
from qstash_sim.domain.account import Account
from qstash_sim.domain.commands import MessageSettings
from qstash_sim.domain.ledger import LedgerEntry
from qstash_sim.domain.message import FINAL_STATES, EventState, HistoryEvent, Message, MessageState
from qstash_sim.domain.queue import Queue
from qstash_sim.domain.schedule import Schedule
from qstash_sim.engine.cron import check_cron
from qstash_sim.engine.engine import Engine
from qstash_sim.engine.transport import RealTransport, RoutingTransport, Transport, VirtualTransport
from qstash_sim.errors import BadRequest, NotFound
from qstash_sim.http.headers import check_name, content_dedup_key, parse_destination, parse_settings
from qstash_sim.sapiom.prices import MESSAGE_PRICE
from qstash_sim.scenarios.feature import Chaos

if TYPE_CHECKING:
    from qstash_sim.scenarios.model import Scenario
    from qstash_sim.scenarios.runtime import ScenarioSet

log = logging.getLogger("qstash_sim")

DEDUP_WINDOW_MS = 10 * 60 * 1000
MAX_BATCH_ITEMS = 1000


@dataclass(slots=True)
class PublishResult:
    """What publish/enqueue/batch answer for one message."""

    message_id: str
    url: str
    deduplicated: bool = False


@dataclass(slots=True)
class Caller:
    """Who is calling: the account, and for Sapiom calls the agent and transaction."""

    account: str = DEFAULT_ACCOUNT
    agent: str | None = None
    transaction_id: str | None = None
    request_id: str | None = None
    caller_ip: str = "127.0.0.1"


class Simulator:
    """A complete, isolated simulator: state, engine, ledger, journal.

    >>> sim = Simulator(seed=7)                       # virtual clock by default
    >>> sim.publish(Caller(), "https://example.com/hook", b"{}", {}).message_id[:4]
    'msg_'
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: Clock | str = "virtual",
        deliver_to: Iterable[str] = (),
        strict: bool = False,
        transport: Transport | None = None,
        real_timeout_cap_ms: int = 30_000,
    ) -> None:
        if isinstance(clock, str):
            if clock not in ("virtual", "real"):
                raise ValueError(f"clock must be 'virtual' or 'real', got {clock!r}")
            clock = VirtualClock() if clock == "virtual" else RealClock()
        self.clock: Clock = clock
        self.world = World(clock=clock, seed=seed)
        self.strict = strict
        self.deliver_to = list(deliver_to)
        self.virtual_transport = VirtualTransport()
        if transport is None:
            transport = RoutingTransport(
                RealTransport(timeout_cap_ms=real_timeout_cap_ms), self.virtual_transport, allow=self.deliver_to
            )
        self.transport = transport
        self.engine = Engine(self.world, transport, on_schedule_fire=self._fire_schedule)
        # Extension points the HTTP layer consults (scenarios, payments); None = feature off.
        self.extensions: dict[str, Any] = {}
        self._on_reset: list[Callable[[], None]] = []
        self.chaos = Chaos(self)  # fault scenarios: rules, scripted destinations, timeline (simulator/chaos.py)

    # ------------------------------------------------------------------ lifecycle
    @property
    def seed(self) -> int:
        """The seed in use (ids and fault draws derive from it)."""
        return self.world.seed

    def start(self) -> None:
        """Start the engine's runner (needs a running event loop)."""
        self.engine.start()

    async def close(self) -> None:
        """Stop the engine and close outbound connections."""
        await self.engine.close()

    def reset(self, *, seed: int | None = None, now_ms: int | None = None) -> None:
        """Back to a fresh start: no accounts, messages, charges or journal; ids restart from the seed."""
        self.engine.reset()
        self.world.reset(seed)
        if now_ms is not None:
            if not isinstance(self.clock, VirtualClock):
                raise BadRequest("body /now: only a virtual clock can be moved")
            self.clock.set(now_ms)
        for hook in self._on_reset:
            hook()

    def on_reset(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` after every reset (used by scenario and payment state)."""
        self._on_reset.append(hook)

    # ------------------------------------------------------------------ time
    async def advance(self, delta: Any) -> int:
        """Move a virtual clock forward by ``delta`` (``"31h"``, seconds, ``timedelta``), running what falls due."""
        await self.engine.advance(delta)
        return self.clock.now_ms()

    async def settle(self) -> None:
        """Run everything due now, without moving time."""
        await self.engine.settle()

    async def run_until(self, predicate: Callable[[], bool], limit: Any = "2d") -> bool:
        """Advance event by event until ``predicate()`` is true or ``limit`` has passed."""
        return await self.engine.run_until(predicate, limit)

    # ------------------------------------------------------------------ fault scenarios
    @property
    def scenarios(self) -> ScenarioSet:
        """The loaded fault scenarios, with their hit counters (``describe()``)."""
        return self.chaos.scenarios

    def load_scenario(
        self, source: str | Path | Mapping[str, Any], *, name: str | None = None, keep: bool = False
    ) -> Scenario:
        """Load a fault scenario now: a shipped name (``"flaky-destination"``), a path, YAML text or a dict.

        Raises :class:`~simulator.scenario_format.ScenarioError` (``file:line: key.path: problem`` lines).
        ``reset()`` unloads it unless ``keep=True`` (then it is loaded again, counters at zero).
        """
        return self.chaos.load(source, name=name, keep=keep)

    def clear_scenarios(self) -> None:
        """Unload every fault scenario."""
        self.chaos.clear()

    # ------------------------------------------------------------------ accounts
    def account(self, name: str = DEFAULT_ACCOUNT) -> Account:
        """The account called ``name`` (created on first use)."""
        return self.world.accounts.get(name)

    def charge(
        self, caller: Caller, operation: str, quantity: int, unit_price: Decimal
    ) -> LedgerEntry | None:
        """Record a charge for ``quantity`` units of ``operation`` (nothing for a zero price)."""
        if quantity <= 0 or unit_price == 0:
            return None
        return self.world.ledger.charge(
            LedgerEntry(
                time_ms=self.world.now,
                account=caller.account,
                operation=operation,
                quantity=quantity,
                unit_price=unit_price,
                agent=caller.agent,
                transaction_id=caller.transaction_id,
                request_id=caller.request_id,
            )
        )

    # ------------------------------------------------------------------ publishing
    def publish(
        self, caller: Caller, destination: str, body: bytes, headers: Mapping[str, str], *, queue: str | None = None
    ) -> PublishResult:
        """Store a message for ``destination`` and hand it to the engine (delivered at once if due now)."""
        url = parse_destination(destination)
        if queue is not None:
            check_name(queue, "path queueName")
        settings = parse_settings(url, headers)
        return self._accept(caller, settings, body, queue)

    def batch(self, caller: Caller, items: list[Any]) -> list[PublishResult]:
        """Validate every item first (all or nothing), then accept them in order."""
        if not isinstance(items, list) or not items:
            raise BadRequest("body: expected a non-empty JSON array of messages")
        if len(items) > MAX_BATCH_ITEMS:
            raise BadRequest(f"body: at most {MAX_BATCH_ITEMS} items per batch, got {len(items)}")
        prepared: list[tuple[MessageSettings, bytes, str | None]] = []
        for i, item in enumerate(items):
            where = f"body /{i}"
            if not isinstance(item, dict):
                raise BadRequest(f"{where}: expected an object with destination, headers, body, queue")
            unknown = set(item) - {"destination", "headers", "body", "queue"}
            if unknown:
                raise BadRequest(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; expected destination, headers, body, queue")
            dest = item.get("destination")
            if not isinstance(dest, str) or not dest:
                raise BadRequest(f"{where}/destination: required, a URL string")
            try:
                url = parse_destination(dest, f"{where}/destination")
            except BadRequest as exc:
                msg = exc.message if exc.message.startswith(where) else f"{where}/destination: {exc.message}"
                raise BadRequest(msg) from None
            hdrs = item.get("headers") or {}
            if not isinstance(hdrs, dict):
                raise BadRequest(f"{where}/headers: expected an object of header name to string value")
            raw_body = item.get("body", "")
            if raw_body is None:
                raw_body = ""
            if not isinstance(raw_body, str):
                raise BadRequest(f"{where}/body: expected a string (JSON-encode objects first), got {type(raw_body).__name__}")
            queue = item.get("queue")
            if queue is not None:
                if not isinstance(queue, str):
                    raise BadRequest(f"{where}/queue: expected a string")
                check_name(queue, f"{where}/queue")
            settings = parse_settings(url, hdrs, where=f"{where}/headers")
            prepared.append((settings, raw_body.encode("utf-8"), queue))
        return [self._accept(caller, s, b, q) for s, b, q in prepared]

    def _accept(self, caller: Caller, s: MessageSettings, body: bytes, queue: str | None) -> PublishResult:
        acc = self.account(caller.account)
        now = self.world.now
        dedup_key = s.dedup_id if s.dedup_id else (content_dedup_key(s, body) if s.content_dedup else None)
        if dedup_key is not None:
            hit = acc.dedup.get(dedup_key)
            if hit is not None and hit[1] > now:
                return PublishResult(hit[0], s.url, deduplicated=True)
        not_before = now + s.delay_ms
        if s.not_before_s is not None:
            not_before = s.not_before_s * 1000
        msg = Message(
            message_id=self.world.ids.new("msg"),
            account=caller.account,
            url=s.url,
            method=s.method,
            body=body,
            content_type=s.content_type,
            headers=s.headers,
            max_retries=s.retries,
            retry_delay_expr=s.retry_delay_expr,
            timeout_ms=s.timeout_ms,
            created_ms=now,
            not_before_ms=max(now, not_before),
            queue_name=queue,
            labels=s.labels,
            dedup_id=dedup_key,
            request_id=caller.request_id,
            caller_ip=caller.caller_ip,
            agent=caller.agent,
            transaction_id=caller.transaction_id,
        )
        self._store(acc, msg)
        if dedup_key is not None:
            acc.dedup[dedup_key] = (msg.message_id, now + DEDUP_WINDOW_MS)
        return PublishResult(msg.message_id, s.url)

    def _store(self, acc: Account, msg: Message) -> None:
        self._register(acc, msg)
        self.engine.submit(msg)

    def _register(self, acc: Account, msg: Message) -> None:
        """Record a new message as CREATED in its account (its queue created on first use)."""
        now = self.world.now
        msg.history.append(HistoryEvent(time_ms=now, state=EventState.CREATED))
        acc.messages[msg.message_id] = msg
        if msg.queue_name is not None and msg.queue_name not in acc.queues:
            acc.queues[msg.queue_name] = Queue(name=msg.queue_name, created_ms=now, updated_ms=now)

    # ------------------------------------------------------------------ messages
    def get_message(self, caller: Caller, message_id: str) -> Message:
        """A message of the caller's account, or 404."""
        msg = self.account(caller.account).messages.get(message_id)
        if msg is None:
            raise NotFound(f"message {message_id} not found")
        return msg

    def cancel_message(self, caller: Caller, message_id: str) -> int:
        """Cancel an undelivered message; 404 if unknown or already final."""
        msg = self.get_message(caller, message_id)
        if msg.state in FINAL_STATES:
            raise NotFound(f"message {message_id} not found: it is already {msg.state.value} and cannot be cancelled")
        if not self.engine.cancel(msg):
            raise NotFound(f"message {message_id} not found: it is already {msg.state.value} and cannot be cancelled")
        return 1

    # ------------------------------------------------------------------ queues
    def list_queues(self, caller: Caller) -> list[Queue]:
        """The caller's queues, oldest first."""
        return sorted(self.account(caller.account).queues.values(), key=lambda q: (q.created_ms, q.name))

    def get_queue(self, caller: Caller, name: str) -> Queue:
        """One queue of the caller's account, or 404."""
        check_name(name, "path name")
        q = self.account(caller.account).queues.get(name)
        if q is None:
            raise NotFound(f"queue {name} not found")
        return q

    def pause_queue(self, caller: Caller, name: str) -> Queue:
        """Pause (idempotent): nothing new starts; an attempt in flight finishes."""
        q = self.get_queue(caller, name)
        if not q.paused:
            q.paused = True
            q.updated_ms = self.world.now
        return q

    def resume_queue(self, caller: Caller, name: str) -> Queue:
        """Resume (idempotent) from the earliest undelivered message."""
        q = self.get_queue(caller, name)
        if q.paused:
            q.paused = False
            q.updated_ms = self.world.now
            self.engine.queue_resumed(caller.account, name)
        return q

    def delete_queue(self, caller: Caller, name: str) -> int:
        """Delete a queue; its pending messages become cancelled. Returns how many."""
        q = self.get_queue(caller, name)
        cancelled = self.engine.queue_deleted(caller.account, name)
        self.account(caller.account).queues.pop(q.name, None)
        return cancelled

    # ------------------------------------------------------------------ schedules
    def create_schedule(
        self, caller: Caller, destination: str, body: bytes, headers: Mapping[str, str]
    ) -> Schedule:
        """Create or (same ``Upstash-Schedule-Id``) overwrite a schedule."""
        url = parse_destination(destination)
        lower = {k.lower(): v for k, v in headers.items()}
        cron = lower.get("upstash-cron")
        if not cron:
            raise BadRequest("header Upstash-Cron: required to create a schedule, e.g. '0 9 * * *'")
        check_cron(cron, "header Upstash-Cron")
        if "upstash-not-before" in lower:
            raise BadRequest("header Upstash-Not-Before: not allowed on schedules; use Upstash-Delay")
        sid = lower.get("upstash-schedule-id")
        if sid is not None:
            check_name(sid, "header Upstash-Schedule-Id")
        queue = lower.get("upstash-queue-name")
        if queue is not None:
            check_name(queue, "header Upstash-Queue-Name")
        s = parse_settings(url, headers)
        acc = self.account(caller.account)
        now = self.world.now
        old = acc.schedules.get(sid) if sid else None
        sched = Schedule(
            schedule_id=sid or self.world.ids.new("scd"),
            account=caller.account,
            cron=cron.strip(),
            destination=url,
            method=s.method,
            body=body,
            content_type=s.content_type,
            headers=s.headers,
            retries=s.retries,
            retry_delay_expr=s.retry_delay_expr,
            timeout_ms=s.timeout_ms,
            delay_ms=s.delay_ms,
            created_ms=old.created_ms if old else now,
            queue_name=queue,
            labels=s.labels,
            generation=old.generation if old else 0,  # the engine bumps it: older fire events go stale
        )
        acc.schedules[sched.schedule_id] = sched
        self.engine.schedule_changed(sched)
        return sched

    def list_schedules(self, caller: Caller) -> list[Schedule]:
        """The caller's schedules, oldest first."""
        return sorted(self.account(caller.account).schedules.values(), key=lambda s: (s.created_ms, s.schedule_id))

    def get_schedule(self, caller: Caller, schedule_id: str) -> Schedule:
        """One schedule of the caller's account, or 404."""
        s = self.account(caller.account).schedules.get(schedule_id)
        if s is None:
            raise NotFound(f"schedule {schedule_id} not found")
        return s

    def delete_schedule(self, caller: Caller, schedule_id: str) -> None:
        """Delete a schedule: it fires no more."""
        s = self.get_schedule(caller, schedule_id)
        self.engine.schedule_deleted(s)
        self.account(caller.account).schedules.pop(schedule_id, None)

    def pause_schedule(self, caller: Caller, schedule_id: str) -> Schedule:
        """Pause (idempotent): cron triggers are skipped."""
        s = self.get_schedule(caller, schedule_id)
        s.is_paused = True
        return s

    def resume_schedule(self, caller: Caller, schedule_id: str) -> Schedule:
        """Resume (idempotent)."""
        s = self.get_schedule(caller, schedule_id)
        s.is_paused = False
        return s

    def _fire_schedule(self, sched: Schedule, fire_ms: int) -> Message | None:
        acc = self.world.accounts.find(sched.account)
        if acc is None or acc.schedules.get(sched.schedule_id) is not sched:
            return None
        now = self.world.now
        msg = Message(
            message_id=self.world.ids.new("msg"),
            account=sched.account,
            url=sched.destination,
            method=sched.method,
            body=sched.body,
            content_type=sched.content_type,
            headers=dict(sched.headers),
            max_retries=sched.retries,
            retry_delay_expr=sched.retry_delay_expr,
            timeout_ms=sched.timeout_ms,
            created_ms=now,
            not_before_ms=now + sched.delay_ms,
            queue_name=sched.queue_name,
            schedule_id=sched.schedule_id,
            labels=list(sched.labels),
        )
        caller = Caller(account=sched.account)
        self.charge(caller, "scheduleTrigger", 1, MESSAGE_PRICE)
        self.world.journal.add(
            now, "fire", account=sched.account, message_id=msg.message_id, url=sched.destination,
            detail={"scheduleId": sched.schedule_id, "cron": sched.cron, "fireTime": fire_ms},
        )
        self._register(acc, msg)  # the engine submits it itself
        return msg

    # ------------------------------------------------------------------ reading
    def messages(self, account: str | None = None) -> list[Message]:
        """Every message (of one account, or of all), in creation order."""
        accs = [self.world.accounts.find(account)] if account else list(self.world.accounts)
        out = [m for a in accs if a is not None for m in a.messages.values()]
        return sorted(out, key=lambda m: (m.created_ms, m.message_id))

    def state_of(self, message_id: str) -> MessageState | None:
        """The state of a message in any account."""
        for acc in self.world.accounts:
            m = acc.messages.get(message_id)
            if m is not None:
                return m.state
        return None
