"""The public facade: :class:`Simulator` is the core with the features qstash-sim ships attached.

* ``sim.scenarios`` -- fault scenarios (:class:`~qstash_sim.scenarios.feature.ScenariosFeature`);
* ``sim.sapiom`` -- Sapiom's transactions, payment gate and prices (:class:`~qstash_sim.sapiom.feature.SapiomFeature`).

Everything else (publish, queues, schedules, the clock) is :class:`~qstash_sim.core.service.SimulatorCore`.

>>> from qstash_sim import Caller, Simulator
>>> sim = Simulator(seed=7)
>>> sim.load_scenario("flaky-destination").name
'flaky-destination'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from qstash_sim.base.clock import Clock
from qstash_sim.contract.load import packaged_fault_statuses
from qstash_sim.core.service import SimulatorCore
from qstash_sim.domain.delivery import DEFAULT_REGION
from qstash_sim.domain.world import Limits
from qstash_sim.engine.engine import ORDERS, Order, SignClock
from qstash_sim.engine.transport import Transport
from qstash_sim.sapiom.feature import SapiomFeature
from qstash_sim.scenarios.feature import ScenariosFeature
from qstash_sim.scenarios.model import Scenario

__all__ = ["Simulator"]


class Simulator(SimulatorCore):
    """A complete, isolated simulator: state, engine, ledger, journal, fault scenarios and Sapiom payments.

    ``seed`` fixes every id, signature jti and fault draw; ``clock`` is ``"virtual"`` (moves only when told)
    or ``"real"``; ``deliver_to`` lists ``fnmatch`` patterns of hosts delivered over real sockets besides
    loopback; ``sign_clock`` is the time signatures carry (``"process"``: the process clock for real-socket
    deliveries, so a receiver in the same process accepts them; ``"virtual"``; or a ``Clock``). ``region`` is
    the ``Upstash-Region`` every delivery carries (default ``EU-CENTRAL-1``); ``max_timeout_ms`` caps every
    attempt's timeout (default: none: an attempt waits its message's ``Upstash-Timeout``, by default the plan
    maximum, 2 h); ``real_timeout_cap_ms`` caps real-socket waits only (default: none).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: Clock | str = "virtual",
        deliver_to: Iterable[str] = (),
        strict: bool = False,
        transport: Transport | None = None,
        real_timeout_cap_ms: int | None = None,
        sign_clock: SignClock = "process",
        limits: Limits | None = None,
        region: str = DEFAULT_REGION,
        max_timeout_ms: int | None = None,
        order: Order = "seq",
    ) -> None:
        super().__init__(
            seed=seed,
            clock=clock,
            deliver_to=deliver_to,
            strict=strict,
            transport=transport,
            real_timeout_cap_ms=real_timeout_cap_ms,
            sign_clock=sign_clock,
            limits=limits,
            region=region,
            max_timeout_ms=max_timeout_ms,
        )
        self.scenarios = self.add_feature(ScenariosFeature(contract=packaged_fault_statuses))
        self.sapiom = self.add_feature(SapiomFeature())
        self.order = order

    @property
    def order(self) -> Order:
        """How the events due at one virtual instant are ordered: ``"seq"``, the order they fell due (the
        default), or ``"shuffle"``, a seeded shuffle of each instant's events (the seed's ``order`` stream),
        to explore other orderings of same-instant deliveries reproducibly. A workflow run's deliveries go
        one at a time either way (:mod:`qstash_sim.engine.lanes`). ``reset()`` keeps it."""
        return self.engine.order

    @order.setter
    def order(self, value: Order) -> None:
        if value not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {value!r}")
        self.engine.order = value

    def load_scenario(
        self, source: str | Path | Mapping[str, Any], *, name: str | None = None, keep: bool = False
    ) -> Scenario:
        """Load a fault scenario now: a shipped name (``"flaky-destination"``), a path, YAML text or a dict.

        Raises :class:`~qstash_sim.scenarios.loader.ScenarioError` (``file:line: key.path: problem`` lines).
        ``reset()`` unloads it unless ``keep=True`` (then it is loaded again, counters at zero).
        """
        return self.scenarios.load(source, name=name, keep=keep)

    def clear_scenarios(self) -> None:
        """Unload every fault scenario."""
        self.scenarios.clear()
