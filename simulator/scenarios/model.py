"""The values a scenario file becomes: frozen dataclasses, no I/O.

Read by :mod:`simulator.scenario_format` (which builds them from YAML) and :mod:`simulator.scenarios` (which
runs them). Durations are integer milliseconds, relative to the virtual instant the scenario was loaded.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

__all__ = [
    "Action",
    "ConnectionFault",
    "DestinationScript",
    "Match",
    "Pass",
    "PaymentDefaults",
    "PaymentRequired",
    "RateLimited",
    "RateLimits",
    "Respond",
    "Rule",
    "Scenario",
    "ScriptedAnswer",
    "StepKind",
    "TimelineStep",
    "Variant",
]


class Variant(enum.Enum):
    """The shape of an injected 402 (sapiom-contract.md §4); the payment feature that builds it knows them."""

    V1 = "v1"  # x402 v1 body
    V2 = "v2"  # x402 v2 body
    V2_HEADER = "v2-header"  # body {} + PAYMENT-REQUIRED header
    WRAPPED = "wrapped"  # Sapiom's wrapped body


class StepKind(enum.Enum):
    """What a timeline step does."""

    PAUSE_QUEUE = "pause_queue"  # the engine pauses ``queue`` (of ``account``, or of every account)
    RESUME_QUEUE = "resume_queue"  # the engine resumes it
    OUTAGE_START = "outage_start"  # inbound calls answer ``status`` (503) until outage_stop
    OUTAGE_STOP = "outage_stop"  # ends the outage
    EXHAUST_QUOTA = "exhaust_quota"  # the daily quota of ``account`` (or all) is used up until UTC midnight
    ROTATE_SIGNING_KEYS = "rotate_signing_keys"  # the engine rotates ``account``'s (or every) signing keys


@dataclass(frozen=True, slots=True)
class PaymentDefaults:
    """What a scenario's 402s carry unless an action says otherwise."""

    variant: Variant = Variant.V1
    network: str = "base-sepolia"
    pay_to: str = "0x1111111111111111111111111111111111111111"
    asset: str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"  # USDC on Base Sepolia
    max_timeout_seconds: int = 60
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """What an inbound call must look like; ``None`` means "any". Globs are :func:`fnmatch.fnmatchcase`."""

    operations: tuple[str, ...] | None = None
    methods: tuple[str, ...] | None = None  # upper case
    path: str | None = None
    queue: str | None = None
    destination: str | None = None
    account: str | None = None
    headers: tuple[tuple[str, str | None], ...] = ()  # (lower-case name, value glob | None = absent)


@dataclass(frozen=True, slots=True)
class PaymentRequired:
    """Answer 402 in the given x402 shape; ``amount`` in USDC base units, else from the price table."""

    variant: Variant | None = None  # None: the scenario's payment.variant
    amount: int | None = None
    description: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RateLimited:
    """Answer 429 with daily (``RateLimit-*``) or burst (``Burst-RateLimit-*``) headers and ``Retry-After``."""

    style: str = "burst"  # "burst" | "daily"
    retry_after_ms: int | None = None  # None: 1 s for burst, until next UTC midnight for daily
    limit: int | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Respond:
    """Answer ``status`` with ``body`` (default ``{"error": message}``) and extra ``headers``."""

    status: int
    message: str | None = None
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ConnectionFault:
    """A broken answer: ``drop`` (close silently), ``reset`` (RST), ``malformed`` (truncated JSON)."""

    mode: str


@dataclass(frozen=True, slots=True)
class Pass:
    """Answer normally (used with ``latency``: the same answer, later)."""


Action: TypeAlias = PaymentRequired | RateLimited | Respond | ConnectionFault | Pass


@dataclass(frozen=True, slots=True)
class Rule:
    """One inbound rule: when ``match`` holds and the counting allows it, do ``action`` after ``latency_ms``."""

    name: str
    match: Match
    action: Action
    latency_ms: int = 0
    nth: int | None = None  # fire only on the nth matching call
    after: int | None = None  # fire only once this many matching calls have been seen
    times: int | None = None  # stop after firing this many times
    probability: float | None = None  # drawn from the faults stream once everything else matched
    window_from_ms: int | None = None  # relative to the scenario's load time
    window_until_ms: int | None = None
    line: int | None = field(default=None, compare=False)  # where it was defined, for messages


@dataclass(frozen=True, slots=True)
class ScriptedAnswer:
    """What a scripted destination answers to one delivery attempt.

    ``reset``: the connection is reset (no status). ``hang_ms``: the answer comes this long after the request,
    in virtual time; the transport compares it with the message's timeout and, if it is longer, reports a
    timeout at ``timeout_ms`` instead. Otherwise ``status``/``headers``/``body`` is the answer. ``rule`` names
    the script (``scenario/destinations[0]``) for the inbox and the journal.
    """

    status: int | None = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    hang_ms: int = 0
    reset: bool = False
    rule: str = ""


@dataclass(frozen=True, slots=True)
class DestinationScript:
    """Answers for deliveries whose full URL matches ``match`` (and, with ``flow_control_key``, whose message
    is under a matching flow-control key): the n-th it answers gets ``answers[n]``, the last repeats.

    ``probability``: it answers only that share of the matching deliveries, drawn from the faults stream; a
    miss falls through to the next matching script, else to the normal destination (a real socket for a
    loopback or allowed host). ``times``: it answers at most that many deliveries, then falls through.
    """

    name: str
    match: str
    answers: tuple[ScriptedAnswer, ...]
    methods: tuple[str, ...] | None = None
    window_from_ms: int | None = None
    window_until_ms: int | None = None
    probability: float | None = None
    times: int | None = None
    line: int | None = field(default=None, compare=False)  # where it was defined, for messages
    flow_control_key: str | None = None  # a glob: only deliveries of messages under a matching key

    @property
    def certain(self) -> bool:
        """Whether it answers every delivery its URL matches until it expires (no ``probability``, no
        flow-control key: those are decided per attempt, from the attempt itself)."""
        return self.probability is None and self.flow_control_key is None


@dataclass(frozen=True, slots=True)
class TimelineStep:
    """A step at ``at_ms`` after the scenario was loaded."""

    at_ms: int
    kind: StepKind
    scenario: str = ""
    index: int = 0
    queue: str | None = None
    account: str | None = None  # None: every account
    status: int = 503  # outage_start only
    message: str | None = None  # outage_start only
    operations: tuple[str, ...] | None = None  # outage_start only; None: every operation

    @property
    def name(self) -> str:
        """``scenario/timeline[2]``, as the journal shows it."""
        return f"{self.scenario}/timeline[{self.index}]"


@dataclass(frozen=True, slots=True)
class RateLimits:
    """A per-account limiter: at most ``per_second`` calls per virtual second and ``per_day`` per UTC day."""

    per_second: int | None = None
    per_day: int | None = None
    operations: tuple[str, ...] | None = None  # None: every operation


@dataclass(frozen=True, slots=True)
class Scenario:
    """A loaded, validated scenario file."""

    name: str
    source: str = "<scenario>"
    description: str | None = None
    seed: int | None = None
    payment: PaymentDefaults = field(default_factory=PaymentDefaults)
    rules: tuple[Rule, ...] = ()
    destinations: tuple[DestinationScript, ...] = ()
    timeline: tuple[TimelineStep, ...] = ()
    rate_limits: RateLimits | None = None
