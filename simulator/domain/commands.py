"""Surface-neutral inputs of the core: what a publish asks for, whatever API it came through."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_RETRIES = 3


MAX_RETRIES = 5


DEFAULT_TIMEOUT_MS = 30_000


METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


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

