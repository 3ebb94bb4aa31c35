"""URL groups (QStash's topics): a name and the endpoints a publish to it fans out to."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Endpoint", "UrlGroup"]


@dataclass(slots=True)
class Endpoint:
    """One endpoint of a URL group: its URL, and an optional name (``endpointName`` in callbacks and logs)."""

    url: str
    name: str | None = None


@dataclass(slots=True)
class UrlGroup:
    """A URL group of one account. A publish to it creates one message per endpoint, in this order."""

    name: str
    created_ms: int
    updated_ms: int
    endpoints: list[Endpoint] = field(default_factory=list)
