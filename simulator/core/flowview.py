"""Flow control as it can be read today: the keys the account's messages name, and what is in flight.

The engine does not enforce flow control yet (no message waits for its key; that behaviour is the next
step), so these views describe what exists, truthfully:

* a key exists once a message the account still keeps names it (``Upstash-Flow-Control-Key``);
* its limits (``parallelism``, ``rate``, ``period``) are those of the newest such message;
* ``parallelism_count`` is how many of its messages have an attempt in flight now, ``rate_count`` how many
  attempts of its messages started within the last ``period``; nothing ever waits (``wait_list_size`` 0),
  nothing is paused or pinned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from qstash_sim.domain.commands import Caller
from qstash_sim.domain.message import FINAL_STATES, EventState, Message
from qstash_sim.errors import NotFound

if TYPE_CHECKING:
    from qstash_sim.core.service import SimulatorCore

__all__ = ["FlowKeyView", "flow_key", "flow_keys", "in_flight"]


@dataclass(frozen=True, slots=True)
class FlowKeyView:
    """One flow-control key as it stands."""

    key: str
    parallelism: int | None  # None: no limit asked
    rate: int | None
    period_s: int
    parallelism_count: int
    rate_count: int
    wait_list_size: int = 0
    paused: bool = False
    pinned_parallelism: bool = False
    pinned_rate: bool = False


def in_flight(m: Message) -> bool:
    """Whether ``m`` has an attempt on the wire now (started, no answer yet)."""
    return m.state not in FINAL_STATES and bool(m.history) and m.history[-1].state is EventState.ACTIVE


def _view(core: SimulatorCore, key: str, msgs: list[Message]) -> FlowKeyView:
    newest = max(msgs, key=lambda m: m.created_ms)
    fc = newest.flow_control
    assert fc is not None
    since = core.world.now - fc.period_s * 1000
    starts = sum(1 for m in msgs for h in m.history if h.state is EventState.ACTIVE and h.time_ms > since)
    return FlowKeyView(
        key=key,
        parallelism=fc.parallelism,
        rate=fc.rate,
        period_s=fc.period_s,
        parallelism_count=sum(1 for m in msgs if in_flight(m)),
        rate_count=starts,
    )


def _by_key(core: SimulatorCore, caller: Caller) -> dict[str, list[Message]]:
    out: dict[str, list[Message]] = {}
    for m in core.account(caller.account).messages.values():
        if m.flow_control is not None:
            out.setdefault(m.flow_control.key, []).append(m)
    return out


def flow_keys(core: SimulatorCore, caller: Caller) -> list[FlowKeyView]:
    """Every key the caller's messages name, by name."""
    return [_view(core, k, msgs) for k, msgs in sorted(_by_key(core, caller).items())]


def flow_key(core: SimulatorCore, caller: Caller, key: str) -> FlowKeyView:
    """One key, or 404 when no message of the account names it."""
    msgs = _by_key(core, caller).get(key)
    if not msgs:
        raise NotFound(f"flow control key {key} not found (no message of this account names it)")
    return _view(core, key, msgs)
