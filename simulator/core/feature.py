"""The one way a feature (fault scenarios, Sapiom payments, later Workflow) plugs into a simulator.

A :class:`Feature` is attached to a :class:`~qstash_sim.core.service.SimulatorCore` with
:meth:`~qstash_sim.core.service.SimulatorCore.add_feature`; the core never imports one. Everything a
feature can do goes through these methods (each a no-op by default):

==================  ===================================================================================
``attach(core)``    called once; keep the core, register capabilities (e.g. a ``ChallengeProvider``)
``reset()``         after every ``core.reset()``, the world already fresh (the seed is ``core.seed``)
``inbound(call)``   an API call of an operation that admits faults: answer it (a :class:`Fired`) or not
``respond(req)``    a delivery to a virtual destination: a scripted :class:`Outcome`, or ``None``
``divert(req)``     a delivery about to go over a real socket: an :class:`Outcome` answers it instead
``force_virtual``   ``True`` sends a URL to the virtual destination even when it is loopback
==================  ===================================================================================

Timeline events (a scenario step, a workflow sleep) go on the engine's one heap with
``core.engine.at(due_ms, callback)``.

Features are asked in the order they were added; the first non-``None`` answer wins.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from qstash_sim.core.service import SimulatorCore
    from qstash_sim.engine.transport import OutboundRequest, Outcome

__all__ = ["ChallengeProvider", "ChallengeRequest", "Feature", "Fired", "FiredKind", "InboundContext"]


@dataclass(frozen=True, slots=True)
class InboundContext:
    """An inbound API call as a feature sees it. Header names are matched case-insensitively.

    ``operation`` is the operationId in ``openapi.yaml``; ``url`` (scheme://host/path?query) is the full
    request URL (what an x402 ``resource`` names), ``path`` the raw path.
    """

    operation: str
    method: str
    path: str
    account: str
    queue: str | None = None
    destination: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", {k.lower(): v for k, v in self.headers.items()})

    def header(self, name: str) -> str | None:
        """A header's value, any case: ``ctx.header("X-Payment")``."""
        return self.headers.get(name.lower())


class FiredKind(enum.Enum):
    """What the HTTP layer does with a :class:`Fired`."""

    RESPOND = "respond"  # send status/headers/body instead of running the operation
    PASS = "pass"  # run the operation as usual; add headers; answer after latency_ms
    DROP = "drop"  # do not run it; close the connection without answering
    RESET = "reset"  # do not run it; reset the connection (TCP RST)
    MALFORMED = "malformed"  # run it, then send its status with the JSON body cut short (invalid JSON)


@dataclass(frozen=True, slots=True)
class Fired:
    """A feature's decision about one inbound call, fully materialized.

    ``rule`` is what the journal records (``"readme-example/pay-first"``); it is ``None`` only for a PASS
    that merely carries headers. ``body`` is JSON-able (``None`` for every kind but RESPOND).
    ``latency_ms`` is real time to wait before answering.
    """

    rule: str | None
    kind: FiredKind
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    latency_ms: int = 0


@dataclass(frozen=True, slots=True)
class ChallengeRequest:
    """What a fault scenario's ``payment_required`` action asks of a 402 (every field but the first optional)."""

    operation: str
    resource_url: str
    variant: str = "v1"  # v1 | v2 | v2-header | wrapped
    amount: int | None = None  # base units; None: the operation's price
    network: str = "base-sepolia"
    pay_to: str = "0x1111111111111111111111111111111111111111"
    asset: str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
    max_timeout_seconds: int = 60
    description: str | None = None  # None: the operation's description
    error: str | None = None
    transaction_id: str | None = None


class ChallengeProvider(Protocol):
    """Builds the 402 a payment-aware client can pay (the Sapiom feature provides one)."""

    def challenge(self, request: ChallengeRequest) -> tuple[dict[str, str], Any]:
        """``(headers, JSON body)`` of the 402."""
        ...


class Feature:
    """Base class of a feature: override what it needs (see the module docstring)."""

    name: ClassVar[str] = "feature"

    def attach(self, core: SimulatorCore) -> None:
        """Called once, when the feature is added to ``core``."""

    def reset(self) -> None:
        """Called after every reset of the core (the world is fresh, the seed may have changed)."""

    def inbound(self, call: InboundContext) -> Fired | None:
        """An API call of an operation that admits faults (``x-fault-statuses``); ``None``: answer it normally."""
        return None

    def respond(self, req: OutboundRequest) -> Outcome | None:
        """A delivery to a virtual destination; ``None``: the default answer (200 ``{}``)."""
        return None

    def divert(self, req: OutboundRequest) -> Outcome | None:
        """A delivery about to go over a real socket; an ``Outcome`` answers it virtually instead."""
        return None

    def force_virtual(self, url: str) -> bool:
        """``True``: deliveries to ``url`` go to the virtual destination even when it is a loopback URL."""
        return False
