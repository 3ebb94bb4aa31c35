"""The surface-neutral service: :class:`SimulatorCore` owns the world and the engine and does what each
API operation asks, whatever surface it came through.

It takes commands (:mod:`qstash_sim.domain.commands`), never wire input, and raises the error tree's
:class:`~qstash_sim.errors.ApiError` subclasses. Features plug in through :mod:`qstash_sim.core.feature`;
the core never imports one. Every method is synchronous and cheap except the clock-moving ones
(``advance``, ``settle``, ``run_until``), which are coroutines because deliveries are real HTTP requests.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

from qstash_sim.base.clock import Clock, RealClock, VirtualClock
from qstash_sim.base.seed import KEYS, MESSAGE, SCHEDULE, Seed
from qstash_sim.core.callbacks import after_attempt
from qstash_sim.core.feature import ChallengeProvider, Feature, Fired, InboundContext
from qstash_sim.core.filters import Selection
from qstash_sim.core.tokens import Tokens
from qstash_sim.core.topics import fire_url_group
from qstash_sim.core.workflow import Workflows
from qstash_sim.domain.account import Account, SigningKeys
from qstash_sim.domain.commands import DEFAULT_ACCOUNT, Caller, PublishCommand, PublishResult, ScheduleCommand
from qstash_sim.domain.delivery import DEFAULT_REGION, DeliverySettings, check_region
from qstash_sim.domain.ledger import SCHEDULE_TRIGGER, LedgerEntry
from qstash_sim.domain.message import FINAL_STATES, EventState, HistoryEvent, Message
from qstash_sim.domain.queue import Queue
from qstash_sim.domain.schedule import Schedule
from qstash_sim.domain.world import Limits, World
from qstash_sim.engine.engine import Engine, SignClock
from qstash_sim.engine.signing import rotate
from qstash_sim.engine.transport import (
    OutboundRequest,
    Outcome,
    RealTransport,
    RoutingTransport,
    Transport,
    VirtualTransport,
    is_own_address,
)
from qstash_sim.errors import BadRequest, NotFound

__all__ = ["DEDUP_WINDOW_MS", "MAX_ERRORS", "SimulatorCore"]

log = logging.getLogger("qstash_sim")

DEDUP_WINDOW_MS = 10 * 60 * 1000
MAX_ERRORS = 100  # unexpected errors kept for tests to re-raise (oldest dropped first)

F = TypeVar("F", bound=Feature)


class Unset(enum.Enum):
    """The default of an optional argument for which ``None`` means something (no cap)."""

    UNSET = "unset"


UNSET = Unset.UNSET


class SimulatorCore:
    """A complete, isolated simulator without features: state, engine, ledger, journal.

    >>> core = SimulatorCore(seed=7)                   # virtual clock by default
    >>> cmd = PublishCommand(MessageSettings(url="https://example.com/hook"), b"{}")
    >>> core.publish(Caller(), cmd).message_id[:4]
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
        real_timeout_cap_ms: int | None = None,
        sign_clock: SignClock = "process",
        limits: Limits | None = None,
        region: str = DEFAULT_REGION,
        max_timeout_ms: int | None = None,
    ) -> None:
        if isinstance(clock, str):
            if clock not in ("virtual", "real"):
                raise ValueError(f"clock must be 'virtual' or 'real', got {clock!r}")
            clock = VirtualClock() if clock == "virtual" else RealClock()
        self.clock: Clock = clock
        self.world = World(
            clock=clock,
            seed=Seed(seed),
            limits=limits if limits is not None else Limits(),
            delivery=DeliverySettings(region=region, max_timeout_ms=max_timeout_ms),
        )
        self.strict = strict  # unknown Upstash-* headers: 400 instead of a journal warning
        # The account of API calls that carry no credentials (the pytest fixture makes it its api_key's).
        self.anonymous_account = DEFAULT_ACCOUNT
        self.features: list[Feature] = []
        # Prices the core charges by itself (a cron fire); a feature that bills (Sapiom) fills it in.
        self.prices: dict[str, Decimal] = {}
        # Who builds a 402 for a fault scenario's payment_required (the Sapiom feature registers one).
        self.challenge_provider: ChallengeProvider | None = None
        # Which account a bearer token / API key names, for every surface (empty: any token is its account).
        self.tokens = Tokens()
        # Unexpected errors (a bug) caught while serving or delivering, for tests to re-raise: bounded.
        self.errors: deque[BaseException] = deque(maxlen=MAX_ERRORS)
        # The ports this simulator's server listens on (loopback): deliveries there are refused, so that a
        # caller cannot make the simulator call its own API (a publish to /_sim/reset, a self-feeding loop).
        self.own_ports: set[int] = set()
        self.virtual_transport = VirtualTransport(self._respond)
        if transport is None:
            transport = RoutingTransport(
                RealTransport(timeout_cap_ms=real_timeout_cap_ms),
                self.virtual_transport,
                allow=deliver_to,
                force_virtual=self._force_virtual,
                divert=self._divert,
            )
        self.transport = transport
        self.engine = Engine(
            self.world, transport, on_schedule_fire=self._fire_schedule, sign_clock=sign_clock, errors=self.errors
        )
        self.engine.on_attempt = lambda msg, outcome, failed: after_attempt(self, msg, outcome, failed)
        self.workflows = Workflows(self)  # Upstash Workflow runs (core/workflow.py): after the callbacks hook

    # ------------------------------------------------------------------ features

    def add_feature(self, feature: F) -> F:
        """Attach ``feature`` (asked after those added before it); returns it."""
        self.features.append(feature)
        feature.attach(self)
        return feature

    def feature(self, kind: type[F]) -> F:
        """The attached feature of class ``kind`` (``LookupError`` if none)."""
        for f in self.features:
            if isinstance(f, kind):
                return f
        raise LookupError(f"no {kind.__name__} attached to this simulator")

    def inbound(self, call: InboundContext) -> Fired | None:
        """What the features do with an inbound call of an operation that admits faults (first answer wins)."""
        for f in self.features:
            fired = f.inbound(call)
            if fired is not None:
                return fired
        return None

    def _respond(self, req: OutboundRequest) -> Outcome | None:
        for f in self.features:
            out = f.respond(req)
            if out is not None:
                return out
        return None

    def _divert(self, req: OutboundRequest) -> Outcome | None:
        for f in self.features:
            out = f.divert(req)
            if out is not None:
                return out
        return None

    def _force_virtual(self, url: str) -> bool:
        for f in self.features:  # a loop, not any(genexpr): it runs on every attempt
            if f.force_virtual(url):
                return True
        return False

    # ------------------------------------------------------------------ lifecycle

    @property
    def seed(self) -> int:
        """The seed in use (ids and fault draws derive from it)."""
        return self.world.seed.value

    def configure(
        self,
        *,
        deliver_to: Iterable[str] | None = None,
        strict: bool | None = None,
        region: str | None = None,
        max_timeout_ms: int | None | Unset = UNSET,
    ) -> None:
        """Change at run time which hosts are delivered for real (``--deliver-to`` patterns), strictness, the
        ``Upstash-Region`` deliveries carry, or the cap on every attempt's timeout (``None``: no cap)."""
        if strict is not None:
            self.strict = strict
        if region is not None:
            self.world.delivery.region = check_region(region)
        if not isinstance(max_timeout_ms, Unset):
            self.world.delivery = DeliverySettings(self.world.delivery.region, max_timeout_ms)
        if deliver_to is not None:
            if not isinstance(self.transport, RoutingTransport):
                raise TypeError("deliver_to needs the default routing transport")
            self.transport.set_allow(deliver_to)

    def start(self) -> None:
        """Start the engine's runner (needs a running event loop)."""
        self.engine.start()

    async def close(self) -> None:
        """Stop the engine and close outbound connections."""
        await self.engine.close()

    def reset(self, *, seed: int | None = None, now_ms: int | None = None) -> None:
        """Back to a fresh start: no accounts, messages, charges or journal; ids restart from the seed.

        ``reset(seed=n)`` is the same as a fresh simulator with seed ``n``, byte for byte.
        """
        if now_ms is not None and not isinstance(self.clock, VirtualClock):
            raise BadRequest("body /now: only a virtual clock can be moved")
        self.engine.reset()
        self.world.reset(seed)
        self.virtual_transport.clear_recorded()
        self.errors.clear()
        self.workflows.reset()
        if now_ms is not None:
            assert isinstance(self.clock, VirtualClock)
            self.clock.set(now_ms)
        for f in self.features:
            f.reset()

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

    # ------------------------------------------------------------------ accounts

    def account(self, name: str = DEFAULT_ACCOUNT) -> Account:
        """The account called ``name`` (created on first use)."""
        return self.world.accounts.get(name)

    def rotate_signing_keys(self, account: str) -> SigningKeys:
        """Roll an account's keys: ``next`` becomes ``current``, a new ``next`` is drawn."""
        acc = self.account(account)
        acc.key_rotations += 1
        fresh = self.world.seed.keyed(KEYS, f"rotation:{acc.key_rotations}:{account}").new("sig", 28)
        acc.signing_keys = rotate(acc.signing_keys, fresh)
        return acc.signing_keys

    def charge(self, caller: Caller, operation: str, quantity: int, unit_price: Decimal) -> LedgerEntry | None:
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

    def refuse_self(self, url: str, where: str = "path destination") -> None:
        """``BadRequest`` when ``url`` is this simulator's own listening address (any loopback spelling)."""
        if self.own_ports and is_own_address(url, self.own_ports):
            raise BadRequest(
                f"{where}: {url} is this simulator's own address; it does not deliver to itself "
                "(publish to your application's endpoint instead)"
            )

    def publish(self, caller: Caller, cmd: PublishCommand) -> PublishResult:
        """Store a message and hand it to the engine (delivered at once if due now); dedup answers the first."""
        self.refuse_self(cmd.settings.url)
        acc = self.account(caller.account)
        s, now = cmd.settings, self.world.now
        dedup_key = s.dedup_key(cmd.body)
        if dedup_key is not None:
            hit = acc.dedup.get(dedup_key)
            if hit is not None and hit[1] > now:
                return PublishResult(hit[0], s.url, deduplicated=True, dedup_id=dedup_key)
        not_before = now + s.delay_ms if s.not_before_s is None else s.not_before_s * 1000
        msg = self._new_message(caller.account, cmd, now, max(now, not_before))
        msg.dedup_id = dedup_key
        msg.request_id = caller.request_id
        msg.caller_ip = caller.caller_ip
        msg.agent = caller.agent
        msg.transaction_id = caller.transaction_id
        self._register(acc, msg)
        self.engine.submit(msg)
        if dedup_key is not None:
            acc.dedup[dedup_key] = (msg.message_id, now + DEDUP_WINDOW_MS)
        return PublishResult(msg.message_id, s.url)

    def batch(self, caller: Caller, commands: list[PublishCommand]) -> list[PublishResult]:
        """Accept every command in order (they were all validated at the edge: all or nothing)."""
        for i, cmd in enumerate(commands):
            self.refuse_self(cmd.settings.url, f"body /{i}/destination")
        return [self.publish(caller, cmd) for cmd in commands]

    def _new_message(self, account: str, cmd: PublishCommand, now: int, not_before: int) -> Message:
        s = cmd.settings
        return Message(
            message_id=self.world.new_id(MESSAGE, "msg"),
            account=account,
            url=s.url,
            method=s.method,
            body=cmd.body,
            content_type=s.content_type,
            headers=dict(s.headers),
            max_retries=s.retries,
            retry_delay_expr=s.retry_delay_expr,
            timeout_ms=s.timeout_ms,
            created_ms=now,
            not_before_ms=not_before,
            queue_name=cmd.queue,
            labels=list(s.labels),
            topic_name=cmd.topic_name,
            endpoint_name=cmd.endpoint_name,
            callback=s.callback,
            failure_callback=s.failure_callback,
            flow_control=s.flow_control,
            redact=s.redact,
        )

    def _register(self, acc: Account, msg: Message) -> None:
        """Record a new message as CREATED in its account (its queue created on first use)."""
        now = self.world.now
        msg.history.append(HistoryEvent(time_ms=now, state=EventState.CREATED))
        acc.messages[msg.message_id] = msg
        if msg.queue_name is not None:
            self._queue(acc, msg.queue_name)

    def _queue(self, acc: Account, name: str) -> Queue:
        """``acc``'s queue ``name``, created (parallelism 1, not paused) if new: the one place queues are born."""
        q = acc.queues.get(name)
        if q is None:
            now = self.world.now
            q = acc.queues[name] = Queue(name=name, created_ms=now, updated_ms=now)
        return q

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
        if msg.state in FINAL_STATES or not self.engine.cancel(msg):
            raise NotFound(f"message {message_id} not found: it is already {msg.state.value} and cannot be cancelled")
        return 1

    # ------------------------------------------------------------------ queues

    def list_queues(self, caller: Caller) -> list[Queue]:
        """The caller's queues, oldest first."""
        return sorted(self.account(caller.account).queues.values(), key=lambda q: (q.created_ms, q.name))

    def get_queue(self, caller: Caller, name: str) -> Queue:
        """One queue of the caller's account, or 404."""
        q = self.account(caller.account).queues.get(name)
        if q is None:
            raise NotFound(f"queue {name} not found")
        return q

    def ensure_queue(self, caller: Caller, name: str) -> Queue:
        """The caller's queue ``name``, created (parallelism 1, not paused) if new."""
        return self._queue(self.account(caller.account), name)

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

    def create_schedule(self, caller: Caller, cmd: ScheduleCommand) -> Schedule:
        """Create or (same ``schedule_id``) overwrite a schedule."""
        self.refuse_self(cmd.settings.url)
        s = cmd.settings
        acc = self.account(caller.account)
        now = self.world.now
        old = acc.schedules.get(cmd.schedule_id) if cmd.schedule_id else None
        sched = Schedule(
            schedule_id=cmd.schedule_id or self.world.new_id(SCHEDULE, "scd"),
            account=caller.account,
            cron=cmd.cron,
            destination=s.url,
            method=s.method,
            body=cmd.body,
            content_type=s.content_type,
            headers=dict(s.headers),
            retries=s.retries,
            retry_delay_expr=s.retry_delay_expr,
            timeout_ms=s.timeout_ms,
            delay_ms=s.delay_ms,
            created_ms=old.created_ms if old else now,
            queue_name=cmd.queue,
            labels=list(s.labels),
            caller_ip=caller.caller_ip,
            generation=old.generation if old else 0,  # the engine bumps it: older fire events go stale
            url_group=cmd.url_group,
            callback=s.callback,
            failure_callback=s.failure_callback,
            flow_control=s.flow_control,
            redact=s.redact,
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

    def _fire_schedule(self, sched: Schedule, fire_ms: int) -> Message | list[Message] | None:
        acc = self.world.accounts.find(sched.account)
        if acc is None or acc.schedules.get(sched.schedule_id) is not sched:
            return None
        if sched.url_group:  # one message per endpoint of the group (native QStash)
            return fire_url_group(self, acc, sched, fire_ms)
        return self.fire_message(acc, sched, fire_ms, sched.destination)

    def fire_message(
        self,
        acc: Account,
        sched: Schedule,
        fire_ms: int,
        url: str,
        group: str | None = None,
        endpoint: str | None = None,
    ) -> Message:
        """One message of a schedule's fire to ``url`` (an endpoint of URL group ``group``, when it is one):
        created from the schedule, charged one trigger, journalled as a ``fire`` and registered (the engine
        submits it itself)."""
        now = self.world.now
        msg = Message(
            message_id=self.world.new_id(MESSAGE, "msg"),
            account=sched.account,
            url=url,
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
            caller_ip=sched.caller_ip,
            topic_name=group,
            endpoint_name=endpoint,
            callback=sched.callback,
            failure_callback=sched.failure_callback,
            flow_control=sched.flow_control,
            redact=sched.redact,
        )
        price = self.prices.get(SCHEDULE_TRIGGER)
        if price is not None:
            self.charge(Caller(account=sched.account), SCHEDULE_TRIGGER, 1, price)
        detail: dict[str, object] = {"scheduleId": sched.schedule_id, "cron": sched.cron, "fireTime": fire_ms}
        if group is not None:
            detail["urlGroup"] = group
        self.world.journal.add(now, "fire", account=sched.account, message_id=msg.message_id, url=url, detail=detail)
        self._register(acc, msg)
        return msg

    # ------------------------------------------------------------------ reading

    def messages(self, account: str | None = None) -> list[Message]:
        """Every message (of one account, or of all), in creation order."""
        accs = [self.world.accounts.find(account)] if account else list(self.world.accounts)
        out = [m for a in accs if a is not None for m in a.messages.values()]
        return sorted(out, key=lambda m: (m.created_ms, m.message_id))

    def unfinished(self) -> dict[str, int]:
        """How many messages are not final yet, per state (``{"pending": 3, "retry": 1}``)."""
        counts: dict[str, int] = {}
        for acc in self.world.accounts:
            for msg in acc.messages.values():
                if msg.state not in FINAL_STATES:
                    counts[msg.state.value] = counts.get(msg.state.value, 0) + 1
        return counts

    def accounts(self) -> Iterator[Account]:
        """Every account seen so far, in order of first use."""
        return iter(self.world.accounts)

    # ------------------------------------------------------------------ native QStash (/v2) additions

    def upsert_queue(self, caller: Caller, name: str, *, parallelism: int | None, paused: bool | None) -> Queue:
        """Create queue ``name`` or change it: ``None`` keeps a value (a new queue: parallelism 1, not paused).

        Raising the parallelism or un-pausing starts waiting messages at once; at most ``parallelism`` of
        its messages are in flight (retries included) at any time.
        """
        if parallelism is not None and parallelism < 1:
            raise BadRequest(f"body /parallelism: expected an integer >= 1, got {parallelism}")
        q = self.ensure_queue(caller, name)
        now = self.world.now
        if parallelism is not None and parallelism != q.parallelism:
            q.parallelism = parallelism
            q.updated_ms = now
            self.engine.queue_resumed(caller.account, name)  # starts what the new slots allow (if not paused)
        if paused is True:
            self.pause_queue(caller, name)
        elif paused is False:
            self.resume_queue(caller, name)
        return q

    def pending_message(self, caller: Caller, message_id: str) -> Message:
        """A message of the caller's account that is not final yet (QStash forgets the others), or 404."""
        msg = self.account(caller.account).messages.get(message_id)
        if msg is None or msg.state in FINAL_STATES:
            raise NotFound(f"message {message_id} not found")
        return msg

    def cancel_messages(self, caller: Caller, selection: Selection) -> int:
        """Cancel every selected message that is not final yet; returns how many (unknown ids are skipped)."""
        acc = self.account(caller.account)
        if selection.ids is not None:
            chosen = [acc.messages[i] for i in selection.ids if i in acc.messages]
        else:
            f = selection.filter
            chosen = [m for m in acc.messages.values() if f.message(m) and f.time(m.created_ms)]
        cancelled = 0
        for msg in chosen:
            if msg.state not in FINAL_STATES and self.engine.cancel(msg):
                cancelled += 1
        return cancelled
