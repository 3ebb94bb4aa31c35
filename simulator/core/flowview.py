"""Flow control as the native API shows and changes it: the keys of an account and what acts on them.

The engine enforces the limits (:mod:`qstash_sim.engine.flow`); a key's state lives in its account
(``Account.flow_keys``, at most :data:`~qstash_sim.engine.flow.MAX_FLOW_KEYS` per account, the oldest idle
ones forgotten first). A key exists once a message names it, or once it is paused or pinned.

* ``parallelism_count``: attempts of the key in flight now; ``wait_list_size``: messages in its waitlist;
* ``rate_count``: starts admitted in the current rate period (0 when none runs); ``period_start_ms``: when
  the current (or last) period started.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from qstash_sim.domain.commands import Caller
from qstash_sim.domain.flow import FlowKey
from qstash_sim.domain.message import FINAL_STATES, EventState, Message
from qstash_sim.errors import NotFound

if TYPE_CHECKING:
    from qstash_sim.core.service import SimulatorCore

__all__ = [
    "FlowKeyView",
    "flow_key",
    "flow_keys",
    "global_parallelism",
    "in_flight",
    "pause",
    "pin",
    "reset_rate",
    "resume",
    "unpin",
]


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
    period_start_ms: int | None = None


def in_flight(m: Message) -> bool:
    """Whether ``m`` has an attempt on the wire now (started, no answer yet)."""
    return m.state not in FINAL_STATES and bool(m.history) and m.history[-1].state is EventState.ACTIVE


def _view(fk: FlowKey, now: int) -> FlowKeyView:
    return FlowKeyView(
        key=fk.key,
        parallelism=fk.parallelism,
        rate=fk.rate,
        period_s=fk.period_s,
        parallelism_count=len(fk.in_flight),
        rate_count=fk.rate_count(now),
        wait_list_size=len(fk.waiting),
        paused=fk.paused,
        pinned_parallelism=fk.pinned_parallelism,
        pinned_rate=fk.pinned_rate,
        period_start_ms=fk.period_start_ms,
    )


def flow_keys(core: SimulatorCore, caller: Caller) -> list[FlowKeyView]:
    """Every key of the caller's account, by name."""
    now = core.world.now
    keys = core.account(caller.account).flow_keys
    return [_view(keys[k], now) for k in sorted(keys)]


def _existing(core: SimulatorCore, caller: Caller, key: str) -> FlowKey:
    fk = core.account(caller.account).flow_keys.get(key)
    if fk is None:
        raise NotFound(f"flow control key {key} not found (no message of this account names it)")
    return fk


def flow_key(core: SimulatorCore, caller: Caller, key: str) -> FlowKeyView:
    """One key, or 404 when the account has none of that name."""
    return _view(_existing(core, caller, key), core.world.now)


def global_parallelism(core: SimulatorCore, caller: Caller) -> tuple[int, int]:
    """``(cap, count)``: the simulator's cap on attempts on real sockets (0: none) and the caller's
    account's attempts in flight now."""
    count = sum(1 for m in core.account(caller.account).messages.values() if in_flight(m))
    return core.world.limits.in_flight or 0, count


def pause(core: SimulatorCore, caller: Caller, key: str) -> FlowKeyView:
    """Pause the key (created if new, so a test may pause it before publishing)."""
    acct = core.account(caller.account)
    fk = core.engine.flows.key(acct, key)
    core.engine.flows.pause(acct, fk)
    return _view(fk, core.world.now)


def resume(core: SimulatorCore, caller: Caller, key: str) -> FlowKeyView:
    """Resume the key: its waitlist starts, within its limits (404 for an unknown key)."""
    fk = _existing(core, caller, key)
    core.engine.flows.resume(core.account(caller.account), fk)
    return _view(fk, core.world.now)


def pin(
    core: SimulatorCore, caller: Caller, key: str, *, parallelism: int | None, rate: int | None, period_s: int | None
) -> FlowKeyView:
    """Pin the given limits and reset the rate period; with none of them it changes nothing (the key is
    created if new)."""
    acct = core.account(caller.account)
    fk = core.engine.flows.key(acct, key)
    if parallelism is not None or rate is not None or period_s is not None:
        core.engine.flows.pin(acct, fk, parallelism=parallelism, rate=rate, period_s=period_s)
    return _view(fk, core.world.now)


def unpin(core: SimulatorCore, caller: Caller, key: str, *, parallelism: bool, rate: bool) -> FlowKeyView:
    """Unpin the parallelism and/or the rate (404 for an unknown key)."""
    fk = _existing(core, caller, key)
    core.engine.flows.unpin(core.account(caller.account), fk, parallelism=parallelism, rate=rate)
    return _view(fk, core.world.now)


def reset_rate(core: SimulatorCore, caller: Caller, key: str) -> FlowKeyView:
    """End the current rate period now (404 for an unknown key)."""
    fk = _existing(core, caller, key)
    core.engine.flows.reset_rate(core.account(caller.account), fk)
    return _view(fk, core.world.now)
