"""A cron schedule of one account."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qstash_sim.domain.commands import CallbackSettings
    from qstash_sim.domain.flow import FlowControl


@dataclass(slots=True)
class Schedule:
    """A cron schedule that produces a message at each fire."""

    schedule_id: str
    account: str
    cron: str  # as given, with its optional ``CRON_TZ=Zone `` prefix
    destination: str
    method: str
    body: bytes
    content_type: str | None
    headers: dict[str, str]  # delivered headers, as on Message
    retries: int
    retry_delay_expr: str | None
    timeout_ms: int
    delay_ms: int
    created_ms: int
    queue_name: str | None = None
    labels: list[str] = field(default_factory=list)
    caller_ip: str = "127.0.0.1"  # who created it: each fire's messages carry it (Upstash-Caller-Ip)
    is_paused: bool = False
    last_schedule_time: int | None = None
    next_schedule_time: int | None = None
    last_schedule_states: dict[str, str] = field(default_factory=dict)  # messageId -> IN_PROGRESS|SUCCESS|FAIL
    generation: int = 0  # bumped on overwrite/delete so stale cron events are ignored
    # Native QStash (/v2) settings, copied into each fire's messages.
    url_group: bool = False  # ``destination`` names a URL group: each fire publishes to every endpoint
    callback: CallbackSettings | None = None
    failure_callback: CallbackSettings | None = None
    flow_control: FlowControl | None = None
    redact: str | None = None
