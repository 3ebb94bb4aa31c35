"""An account: everything one caller owns, and its signing keys."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qstash_sim.domain.flow import FlowKey
    from qstash_sim.domain.message import DlqEntry, Message
    from qstash_sim.domain.queue import Queue
    from qstash_sim.domain.schedule import Schedule
    from qstash_sim.domain.topic import UrlGroup


@dataclass(slots=True)
class SigningKeys:
    """An account's QStash signing keys: ``current`` signs, ``next`` takes over on rotation."""

    current: str
    next: str


@dataclass(slots=True)
class Account:
    """Everything one account owns. Accounts never see each other's objects.

    ``dlq`` and ``dedup`` are ordered oldest first (``OrderedDict``), so the world drops the oldest in O(1)
    when they reach their caps (``Limits.dlq_per_account``, ``Limits.dedup_per_account``).
    """

    name: str
    signing_keys: SigningKeys
    key_rotations: int = 0  # how many times its keys were rotated (each rotation draws from its own stream)
    messages: dict[str, Message] = field(default_factory=dict)
    queues: dict[str, Queue] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)
    url_groups: dict[str, UrlGroup] = field(default_factory=dict)  # QStash's topics, oldest first
    dlq: OrderedDict[str, DlqEntry] = field(default_factory=OrderedDict)
    # dedup id -> (message id, expires ms), in insertion order (expired ones are pruned from the front)
    dedup: OrderedDict[str, tuple[str, int]] = field(default_factory=OrderedDict)
    # flow-control key -> its state (limits, in flight, waitlist, rate period), oldest first (the engine's)
    flow_keys: OrderedDict[str, FlowKey] = field(default_factory=OrderedDict)
