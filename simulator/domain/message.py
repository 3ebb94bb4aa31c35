"""Messages and their lives: states, history events, DLQ entries and inbox records.

Plain dataclasses, no I/O, no JSON. Times are integer milliseconds on the simulator's clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from qstash_sim.domain.commands import CallbackSettings
    from qstash_sim.domain.flow import FlowControl


class MessageState(enum.Enum):
    """Sapiom's coarse message state, as shown by ``GET /v1/qstash/messages/{id}``."""

    PENDING = "pending"  # stored, waiting for its first attempt (or attempt in flight)
    RETRY = "retry"  # at least one attempt failed, another one is scheduled
    DELIVERED = "delivered"  # a 2xx answer was received
    FAILED = "failed"  # retries exhausted or non-retryable: moved to the DLQ
    CANCELLED = "cancelled"  # cancelled before delivery

    # Members are singletons: hash by identity (C), not Enum's hash of the name (Python code, and
    # ``state in FINAL_STATES`` is asked several times per attempt).
    __hash__ = object.__hash__


class EventState(enum.Enum):
    """QStash's fine-grained lifecycle vocabulary, used in a message's history."""

    CREATED = "CREATED"  # accepted and stored
    ACTIVE = "ACTIVE"  # an attempt is in progress
    ERROR = "ERROR"  # an attempt failed
    RETRY = "RETRY"  # a retry is scheduled (``next_delivery_ms`` set)
    DELIVERED = "DELIVERED"  # 2xx received
    FAILED = "FAILED"  # retries exhausted or non-retryable
    CANCELLED = "CANCELLED"  # cancelled before delivery


FINAL_STATES = frozenset({MessageState.DELIVERED, MessageState.FAILED, MessageState.CANCELLED})


@dataclass(slots=True)
class HistoryEvent:
    """One step in a message's life, stamped with virtual time."""

    time_ms: int
    state: EventState
    retried: int = 0  # attempt number: 0 for the first attempt
    response_status: int | None = None
    error: str | None = None
    next_delivery_ms: int | None = None


@dataclass(slots=True)
class Message:
    """A message accepted by publish, enqueue, batch or a schedule fire."""

    message_id: str
    account: str
    url: str  # the destination exactly as published (its query string kept)
    method: str  # from Upstash-Method, default POST
    body: bytes
    content_type: str | None
    headers: dict[str, str]  # delivered headers: ``Upstash-Forward-X: v`` stored as ``X: v``
    max_retries: int
    retry_delay_expr: str | None
    timeout_ms: int
    created_ms: int
    not_before_ms: int  # first attempt not before this instant (== created_ms without a delay)
    queue_name: str | None = None
    schedule_id: str | None = None
    labels: list[str] = field(default_factory=list)
    dedup_id: str | None = None
    request_id: str | None = None  # the inbound request (journal) that created it
    caller_ip: str = "127.0.0.1"
    agent: str | None = None  # the Sapiom agent that paid for it, when known
    transaction_id: str | None = None
    state: MessageState = MessageState.PENDING
    retried: int = 0  # retries done so far
    next_delivery_ms: int | None = None
    history: list[HistoryEvent] = field(default_factory=list)
    dlq_id: str | None = None
    # Native QStash (/v2) settings the Sapiom gateway drops: kept for reads (GET message, logs, DLQ).
    topic_name: str | None = None  # the URL group it was published to (one message per endpoint)
    endpoint_name: str | None = None  # that endpoint's name, when it has one
    callback: CallbackSettings | None = None
    failure_callback: CallbackSettings | None = None
    source_message_id: str | None = None  # a (failure) callback: the message whose attempt it reports
    callback_kind: str | None = None  # then "callback" or "failureCallback"
    flow_control: FlowControl | None = None
    redact: str | None = None  # Upstash-Redact-Fields, as given: stored and returned values are redacted


@dataclass(slots=True)
class DlqEntry:
    """A failed message with the last response its destination gave."""

    dlq_id: str
    message: Message
    created_ms: int
    response_status: int | None
    response_headers: dict[str, list[str]]
    response_body: bytes
    error: str | None = None


class LazyHeader:
    """One header of a request whose value is made when the headers are first read: the
    ``Upstash-Signature`` of an attempt to a virtual destination (an HMAC over the body per attempt, which
    nothing may ever look at). Everything the value depends on (key, URL, body, time, ``jti``) is fixed
    when the attempt starts, so the value is the same whenever, or whether, it is read."""

    __slots__ = ("_headers", "_make", "_name")

    def __init__(self, headers: dict[str, str], name: str, make: Callable[[], str]) -> None:
        self._headers = headers
        self._name = name
        self._make: Callable[[], str] | None = make

    def fill(self) -> dict[str, str]:
        """The headers, with the lazy one in them (made on the first call; later calls just answer them)."""
        make = self._make
        if make is not None:
            self._make = None
            self._headers[self._name] = make()
        return self._headers


@dataclass(slots=True)
class Delivery:
    """What a destination received (or would have received, for a virtual one): the inbox record.

    ``headers`` are exactly the headers sent, ``Upstash-Signature`` included (for a virtual destination
    it is made when ``headers`` is first read; see :class:`LazyHeader`)."""

    seq: int
    time_ms: int
    account: str
    message_id: str
    url: str
    method: str
    sent_headers: dict[str, str]  # what ``headers`` answers (read ``headers``: it fills in a lazy one)
    body: bytes
    retried: int
    virtual: bool  # True when answered by the simulator instead of a real socket
    status: int | None = None  # the answer; None on connection error or timeout
    error: str | None = None
    duration_ms: int = 0
    lazy: LazyHeader | None = field(default=None, repr=False, compare=False)

    @property
    def headers(self) -> dict[str, str]:
        """Exactly the headers sent, ``Upstash-Signature`` included."""
        return self.sent_headers if self.lazy is None else self.lazy.fill()
