"""Selecting messages, DLQ entries and log events: QStash's filters, surface-neutral.

A :class:`Filter` is what a list or bulk call names (``url``, ``queueName``, ``label``, dates, ...): OR within
one filter (any of its values), AND across filters, an unset filter matches everything. A
:class:`Selection` adds explicit ids: with ids, exactly those are selected and the filters are ignored; an
empty id list selects nothing (never "everything"); without ids, the filters decide.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from qstash_sim.domain.message import Message

__all__ = ["Filter", "Selection", "host_of", "path_of", "unique"]


def host_of(url: str) -> str:
    """The host of ``url`` as the ``host`` filter compares it: lower case, with ``:port`` when it has one."""
    try:
        return urlsplit(url).netloc.rsplit("@", 1)[-1].lower()
    except ValueError:
        return ""


def path_of(url: str) -> str:
    """The path of ``url`` (``/`` when it has none)."""
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return ""


@dataclass(frozen=True, slots=True)
class Filter:
    """Message attributes to match; ``None`` (the default) is no condition."""

    message_ids: frozenset[str] | None = None
    urls: frozenset[str] | None = None
    topic_names: frozenset[str] | None = None
    queue_names: frozenset[str] | None = None
    schedule_ids: frozenset[str] | None = None
    labels: frozenset[str] | None = None
    flow_keys: frozenset[str] | None = None
    hosts: frozenset[str] | None = None  # lower case
    paths: frozenset[str] | None = None
    caller_ips: frozenset[str] | None = None
    response_statuses: frozenset[int] | None = None  # DLQ entries: their last answer (0: none)
    from_ms: int | None = None  # inclusive, on the time of what is listed (creation, DLQ entry, event)
    to_ms: int | None = None

    @classmethod
    def of(cls, **values: Iterable[str] | Iterable[int] | int | None) -> Filter:
        """``Filter.of(urls=["https://a"], from_ms=5)``: iterables become sets, ``None`` stays unset."""
        out: dict[str, object] = {}
        for name, v in values.items():
            if v is None or isinstance(v, int):
                out[name] = v
            else:
                out[name] = frozenset(v)
        return cls(**out)  # type: ignore[arg-type]

    @property
    def empty(self) -> bool:
        """Whether no condition is set (everything matches)."""
        return all(getattr(self, f) is None for f in self.__slots__)

    def message(self, m: Message) -> bool:
        """Whether ``m``'s own attributes match (dates and response statuses are the caller's to check)."""
        if self.message_ids is not None and m.message_id not in self.message_ids:
            return False
        if self.urls is not None and m.url not in self.urls:
            return False
        if self.topic_names is not None and m.topic_name not in self.topic_names:
            return False
        if self.queue_names is not None and m.queue_name not in self.queue_names:
            return False
        if self.schedule_ids is not None and m.schedule_id not in self.schedule_ids:
            return False
        if self.labels is not None and not self.labels.intersection(m.labels):
            return False
        if self.flow_keys is not None and (m.flow_control is None or m.flow_control.key not in self.flow_keys):
            return False
        if self.hosts is not None and host_of(m.url) not in self.hosts:
            return False
        if self.paths is not None and path_of(m.url) not in self.paths:
            return False
        return self.caller_ips is None or m.caller_ip in self.caller_ips

    def time(self, t_ms: int) -> bool:
        """Whether ``t_ms`` is within ``from_ms`` and ``to_ms`` (both inclusive)."""
        return (self.from_ms is None or t_ms >= self.from_ms) and (self.to_ms is None or t_ms <= self.to_ms)

    def status(self, status: int) -> bool:
        """Whether a last answer's status (0: none) matches ``response_statuses``."""
        return self.response_statuses is None or status in self.response_statuses


@dataclass(frozen=True, slots=True)
class Selection:
    """What a bulk call acts on: ``ids`` (exactly those; ``[]`` selects nothing), else ``filter``."""

    ids: tuple[str, ...] | None = None
    filter: Filter = field(default_factory=Filter)

    @property
    def by_ids(self) -> bool:
        """Whether explicit ids decide (then the filters are ignored)."""
        return self.ids is not None

    @property
    def everything(self) -> bool:
        """Neither ids nor a filter: everything is selected."""
        return self.ids is None and self.filter.empty


def unique(ids: Iterable[str]) -> tuple[str, ...]:
    """``ids`` without repeats, first occurrence first."""
    return tuple(dict.fromkeys(ids))
