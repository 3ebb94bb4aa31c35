"""Surface-neutral inputs of the core: who is calling, and what a publish or a schedule asks for.

Every API surface turns its own wire format (Sapiom's ``/v1/qstash`` headers, native QStash ``/v2``
headers and query parameters, a batch item's ``headers`` object) into these commands at the edge
(:mod:`qstash_sim.http.headers`); the core never sees a raw header.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from qstash_sim.domain.flow import FlowControl

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT_MS",
    "MAX_RETRIES",
    "METHODS",
    "CallbackSettings",
    "Caller",
    "MessageSettings",
    "PublishCommand",
    "PublishResult",
    "ScheduleCommand",
]

DEFAULT_ACCOUNT = "default"
DEFAULT_RETRIES = 3
MAX_RETRIES = 5
# A message without Upstash-Timeout waits as long as the plan allows: QStash's "Max HTTP Response Duration"
# is 15 min on the free plan and 2 h on pay-as-you-go (pricing page), the plan the official dev server
# simulates by default (`qstash dev -quota payg`). Upstash-Timeout only shortens it.
DEFAULT_TIMEOUT_MS = 2 * 60 * 60 * 1000
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(slots=True)
class Caller:
    """Who is calling: the account, and for Sapiom calls the agent and transaction."""

    account: str = DEFAULT_ACCOUNT
    agent: str | None = None
    transaction_id: str | None = None
    request_id: str | None = None
    caller_ip: str = "127.0.0.1"


@dataclass(slots=True)
class CallbackSettings:
    """Where a (failure) callback goes and how it is delivered: ``Upstash-Callback`` and its variants.

    ``None`` fields inherit the source message's settings (QStash: "uses the original retry settings unless
    Upstash-Callback-* headers are set").
    """

    url: str
    method: str = "POST"
    timeout_ms: int | None = None
    retries: int | None = None
    retry_delay_expr: str | None = None
    delay_ms: int = 0
    headers: dict[str, str] = field(default_factory=dict)  # forwarded to the callback URL


@dataclass(slots=True)
class MessageSettings:
    """Everything a message needs besides its id and body."""

    url: str
    method: str = "POST"
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # delivered headers, prefix removed
    delay_ms: int = 0
    not_before_s: int | None = None
    retries: int = DEFAULT_RETRIES
    retry_delay_expr: str | None = None
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    dedup_id: str | None = None
    content_dedup: bool = False
    labels: list[str] = field(default_factory=list)
    callback: CallbackSettings | None = None
    failure_callback: CallbackSettings | None = None
    flow_control: FlowControl | None = None
    redact: str | None = None  # Upstash-Redact-Fields, as given

    def dedup_key(self, body: bytes) -> str | None:
        """The deduplication id of a message with this body: the explicit one, the content one, or ``None``."""
        if self.dedup_id:
            return self.dedup_id
        return content_dedup_key(self, body) if self.content_dedup else None


def content_dedup_key(s: MessageSettings, body: bytes) -> str:
    """The id QStash derives for content-based deduplication: destination, body, type, forwarded headers."""
    h = hashlib.sha256()
    h.update(s.url.encode())
    h.update(b"\0")
    h.update(body)
    h.update(b"\0")
    h.update((s.content_type or "").encode())
    for k, v in sorted(s.headers.items()):
        h.update(f"\0{k.lower()}:{v}".encode())
    return "content:" + h.hexdigest()


@dataclass(slots=True)
class PublishCommand:
    """One message to accept: its settings (destination included), body and optional queue."""

    settings: MessageSettings
    body: bytes = b""
    queue: str | None = None
    topic_name: str | None = None  # a URL group's endpoint: the group (delivered as Upstash-Topic-Name)
    endpoint_name: str | None = None


@dataclass(slots=True)
class ScheduleCommand:
    """Create (or, same ``schedule_id``, overwrite) a cron schedule; each fire publishes ``settings``/``body``."""

    settings: MessageSettings
    cron: str
    body: bytes = b""
    schedule_id: str | None = None
    queue: str | None = None
    url_group: bool = False  # ``settings.url`` is a URL group's name: each fire goes to its endpoints


@dataclass(slots=True)
class PublishResult:
    """What publish/enqueue/batch answer for one message."""

    message_id: str
    url: str
    deduplicated: bool = False
    dedup_id: str | None = None  # a duplicate's: the deduplication id it shares with ``message_id``
