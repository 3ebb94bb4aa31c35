"""The process's own clock at the simulator's virtual time: ``with qstash_sim.clock.process_time(): ...``.

Application code that runs in the test's process (a Python workflow endpoint, a receiver in a thread) reads
the wall clock (``time.time()``, ``datetime.now()``), not the simulator's. Inside ``process_time()``,
time-machine holds the process's clock at the simulator's virtual time and moves it with every move of the
virtual clock, instant by instant during an ``advance`` (so a delivery made at a virtual instant finds
``time.time()`` at that instant). Signatures of real-socket deliveries are made with the process clock, so
an in-process ``Receiver`` still accepts them. Monotonic clocks (``time.monotonic()``, asyncio's) are left
alone. It needs time-machine (``pip install time-machine``; the ``test`` extra has it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from qstash_sim.base.clock import VirtualClock

if TYPE_CHECKING:
    from .handle import _Core

__all__ = ["process_time"]


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@contextlib.contextmanager
def process_time(core: _Core) -> Iterator[None]:
    """Hold ``time.time()`` & co. at ``core``'s virtual time while inside (see the module docstring)."""
    try:
        import time_machine  # noqa: PLC0415 - optional: only this helper needs it
    except ModuleNotFoundError:
        raise RuntimeError("clock.process_time() needs time-machine: pip install time-machine") from None
    clock = core.sim.clock
    if not isinstance(clock, VirtualClock):
        raise TypeError(f"clock.process_time() needs a virtual clock; this simulator runs on {clock!r}")
    traveller = time_machine.travel(_at(clock.now_ms()), tick=False)
    coordinates = traveller.start()
    unwatch = core.on_loop(lambda: clock.watch(lambda ms: coordinates.move_to(_at(ms))))
    try:
        yield
    finally:
        core.on_loop(unwatch)
        traveller.stop()
