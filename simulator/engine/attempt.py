"""The rules of one delivery attempt: what is sent, and what its outcome does to the message.

The engine decides *when* an attempt runs; :class:`AttemptRules` decides *what* it sends (headers,
signature) and what follows from the answer (delivered, retry at some instant, or failed into the DLQ),
writing history, journal and inbox. It never touches the event heap: :meth:`AttemptRules.apply` returns a
:class:`Verdict` and the engine schedules the retry or frees the queue slot.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from qstash_sim.base.seed import JTI
from qstash_sim.domain.journal import JournalEntry
from qstash_sim.domain.message import (
    FINAL_STATES,
    Delivery,
    DlqEntry,
    EventState,
    HistoryEvent,
    LazyHeader,
    Message,
    MessageState,
)
from qstash_sim.domain.world import World
from qstash_sim.engine.retry import RetryDelay, compile_retry_delay, default_backoff_ms, parse_retry_after
from qstash_sim.engine.signing import sign
from qstash_sim.engine.transport import OutboundRequest, Outcome

__all__ = ["AttemptRules", "Prepared", "Verdict"]

log = logging.getLogger("qstash_sim.engine")


class Verdict(enum.Enum):
    """What an attempt's outcome did to its message."""

    DELIVERED = "delivered"  # 2xx: final
    RETRY = "retry"  # failed, another attempt at ``msg.next_delivery_ms``
    FAILED = "failed"  # failed for good: a DLQ entry exists
    CANCELLED = "cancelled"  # the message was cancelled while the request was on the wire


@dataclass(slots=True)
class Prepared:
    """An attempt ready to send: the request, its timeout, and the inbox record to fill in."""

    msg: Message
    request: OutboundRequest
    timeout_ms: int
    delivery: Delivery


class AttemptRules:
    """Builds attempts and applies their outcomes for one :class:`World`.

    Holds the few things that must survive between attempts: compiled ``Upstash-Retry-Delay``
    expressions, the per-millisecond DLQ id counter and the seeded ``jti`` stream (its own stream, so
    that the number of attempts never shifts the message ids a test sees).
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.reset()

    def reset(self) -> None:
        """Forget the caches (the ``jti`` stream restarts with the world's seed)."""
        self._delay_exprs: dict[str, RetryDelay | None] = {}
        self._dlq_stamp = (0, -1)  # (ms, last seq used at that ms) for "{ms}-{seq}" DLQ ids
        self._extra: dict[str, Any] | None = None  # the engine's detail for the journal line being written

    # ----------------------------------------------------------------------------------------------

    def start(self, msg: Message, now: int, sign_now: int, *, lazy: bool = False) -> Prepared:
        """Record ACTIVE and build the request; ``sign_now`` is the time put into the signature.

        With ``lazy`` (an attempt to a virtual destination), the signature is made when the headers are
        first read (:class:`LazyHeader`: the same value, whenever it is read). The attempt waits for its
        answer at most the message's timeout (``Upstash-Timeout``), capped by
        ``world.delivery.max_timeout_ms`` when set."""
        msg.history.append(HistoryEvent(now, EventState.ACTIVE, retried=msg.retried))
        headers, signature = self.headers_and_signature(msg, sign_now)
        pending = None
        if lazy:
            pending = LazyHeader(headers, "Upstash-Signature", signature)
        else:
            headers["Upstash-Signature"] = signature()
        flow_key = msg.flow_control.key if msg.flow_control is not None else None
        request = OutboundRequest(msg.url, msg.method, headers, msg.body, pending, flow_key)
        delivery = Delivery(
            0, now, msg.account, msg.message_id, msg.url, msg.method, headers, msg.body, msg.retried, True, lazy=pending
        )
        return Prepared(msg, request, self.world.delivery.timeout_ms(msg.timeout_ms), delivery)

    def headers_and_signature(self, msg: Message, sign_now: int) -> tuple[dict[str, str], Callable[[], str]]:
        """Forwarded headers, then ours (which win over a forwarded header of the same name, any case), all
        but ``Upstash-Signature``; and what makes it (its ``jti`` drawn now, in attempt order, so the seed
        gives the same signatures whenever they are made)."""
        ours: dict[str, str] = {}
        if msg.content_type:
            ours["Content-Type"] = msg.content_type
        ours["Upstash-Message-Id"] = msg.message_id
        ours["Upstash-Retried"] = str(msg.retried)
        if msg.schedule_id:
            ours["Upstash-Schedule-Id"] = msg.schedule_id
        if msg.topic_name:
            ours["Upstash-Topic-Name"] = msg.topic_name  # a URL group's message (one per endpoint)
        ours["Upstash-Caller-Ip"] = msg.caller_ip  # the publisher's address (a schedule's: its creator's)
        ours["Upstash-Region"] = self.world.delivery.region
        ours["User-Agent"] = "Upstash-QStash"
        key = self.world.accounts.get(msg.account).signing_keys.current
        jti = f"jwt_{self.world.seed.stream(JTI).getrandbits(96):024x}"
        signature = partial(sign, key, msg.url, msg.body, sign_now, jti)
        if not msg.headers:
            return ours, signature
        taken = {k.lower() for k in ours}
        taken.add("upstash-signature")
        headers = {k: v for k, v in msg.headers.items() if k.lower() not in taken}
        headers.update(ours)
        return headers, signature

    def sent(self, delivery: Delivery, real: bool) -> None:
        """Append the inbox record as the request goes out (inbox order = order of starts); its answer is
        filled in by :meth:`record` when it lands (until then ``status`` and ``error`` are ``None``)."""
        delivery.virtual = not real
        self.world.inbox.append(delivery)

    def record(self, delivery: Delivery, outcome: Outcome) -> None:
        """Fill in the inbox record with the answer."""
        delivery.virtual = outcome.virtual
        delivery.status = outcome.status
        delivery.error = outcome.error
        delivery.duration_ms = outcome.duration_ms

    def apply(self, msg: Message, outcome: Outcome, now: int, extra: dict[str, Any] | None = None) -> Verdict:
        """Turn an outcome into history, journal (``extra`` added to its detail), and a retry time or a DLQ
        entry."""
        self._extra = extra
        retried = msg.retried
        if msg.state in FINAL_STATES:  # cancelled while the request was on the wire: the cancel wins
            self._journal(msg, outcome, Verdict.CANCELLED, retried, now)
            return Verdict.CANCELLED
        if outcome.ok:
            msg.state = MessageState.DELIVERED
            msg.next_delivery_ms = None
            msg.history.append(HistoryEvent(now, EventState.DELIVERED, retried=retried, response_status=outcome.status))
            self._journal(msg, outcome, Verdict.DELIVERED, retried, now)
            return Verdict.DELIVERED
        error = outcome.error or f"destination answered {outcome.status}"
        msg.history.append(
            HistoryEvent(now, EventState.ERROR, retried=retried, response_status=outcome.status, error=error)
        )
        flag = (outcome.header("Upstash-NonRetryable-Error") or "").strip().lower()
        non_retryable = outcome.status == 489 and flag == "true"
        if not non_retryable and retried < msg.max_retries:
            delay, origin = self._retry_delay(msg, outcome, now)
            due = now + delay
            msg.retried = retried + 1
            msg.state = MessageState.RETRY
            msg.next_delivery_ms = due
            msg.history.append(HistoryEvent(now, EventState.RETRY, retried=retried, next_delivery_ms=due))
            self._journal(msg, outcome, Verdict.RETRY, retried, now, next_delivery_ms=due, retry_origin=origin)
            return Verdict.RETRY
        dlq_id = self._dlq_id(now)
        msg.state = MessageState.FAILED
        msg.next_delivery_ms = None
        msg.dlq_id = dlq_id
        msg.history.append(
            HistoryEvent(now, EventState.FAILED, retried=retried, response_status=outcome.status, error=error)
        )
        self.world.accounts.get(msg.account).dlq[dlq_id] = DlqEntry(
            dlq_id=dlq_id,
            message=msg,
            created_ms=now,
            response_status=outcome.status,
            response_headers={k: list(v) for k, v in outcome.headers.items()},
            response_body=outcome.body,
            error=outcome.error,
        )
        self._journal(msg, outcome, Verdict.FAILED, retried, now, dlq_id=dlq_id, non_retryable=non_retryable)
        return Verdict.FAILED

    # ----------------------------------------------------------------------------------------------

    def _retry_delay(self, msg: Message, outcome: Outcome, now: int) -> tuple[int, str]:
        """Destination's Retry-After & co. first, then Upstash-Retry-Delay, then the default backoff; with
        where the delay came from (``retry-after``, ``upstash-retry-delay``, ``backoff``: the journal's
        ``detail.retry_origin``)."""
        asked = parse_retry_after(outcome.headers, now)
        if asked is not None:
            return asked, "retry-after"
        if msg.retry_delay_expr:
            expr = self._compiled(msg.retry_delay_expr, now)
            if expr is not None:
                try:
                    return expr.evaluate(msg.retried), "upstash-retry-delay"
                except ValueError as exc:
                    self.world.journal.warn(
                        now, f"{exc}; using the default backoff", account=msg.account, message_id=msg.message_id
                    )
        return default_backoff_ms(msg.retried + 1), "backoff"

    def _compiled(self, source: str, now: int) -> RetryDelay | None:
        if source not in self._delay_exprs:
            try:
                self._delay_exprs[source] = compile_retry_delay(source)
            except ValueError as exc:  # the gateway should have answered 400 already
                self.world.journal.warn(now, f"{exc}; using the default backoff")
                self._delay_exprs[source] = None
        return self._delay_exprs[source]

    def _dlq_id(self, now: int) -> str:
        ms, seq = self._dlq_stamp
        seq = seq + 1 if ms == now else 0
        self._dlq_stamp = (now, seq)
        return f"{now}-{seq}"

    def _journal(self, msg: Message, outcome: Outcome, verdict: Verdict, retried: int, now: int, **detail: Any) -> None:
        info = {"duration_ms": outcome.duration_ms, "virtual": outcome.virtual}
        if self._extra:
            info.update(self._extra)
        if detail:
            info.update(detail)
        self.world.journal.keep(  # Journal.add without a second pass of the keywords (once per attempt)
            JournalEntry(
                seq=0,
                time_ms=now,
                kind="attempt",
                account=msg.account,
                request_id=msg.request_id,
                message_id=msg.message_id,
                retried=retried,
                url=msg.url,
                method=msg.method,
                status=outcome.status,
                outcome=verdict.value,
                error=outcome.error,
                rule=outcome.rule,
                detail=info,
                source_message_id=msg.source_message_id,
            )
        )
        if not log.isEnabledFor(logging.INFO):
            return
        log.info(
            "attempt %s retried=%d %s %s -> %s %s%s",
            msg.message_id,
            retried,
            msg.method,
            msg.url,
            outcome.status if outcome.status is not None else outcome.error,
            verdict.value,
            " (virtual)" if outcome.virtual else "",
        )
