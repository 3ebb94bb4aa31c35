"""The pytest plugin (entry point ``pytest11: qstash_sim``; ``-p no:qstash_sim`` turns it off).

It only builds, prepares and stops servers; everything a test touches lives in :mod:`.handle`. One
server per session (so one per xdist worker) starts on first use and is reset before each test.

Seed, in order of precedence: ``@pytest.mark.qstash_sim(seed=)``, ``@pytest.mark.qstash_scenario(...,
seed=)``, ``--qstash-sim-seed``, ini ``qstash_sim_seed``, else 0. ``random`` draws one per session (the
same for every xdist worker); it is printed in the header and on every failure.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# The simulator (and aiohttp) load on first use of a fixture, not whenever pytest starts.
if TYPE_CHECKING:
    from qstash_sim.receiver import Receiver

    from .handle import AsyncQstashSim, QstashSim
    from .server import SimConfig, SimServer

_SEED = pytest.StashKey[tuple[int, str]]()  # (seed, where it came from)
_USED = pytest.StashKey["SimConfig"]()  # on an item: the config its qstash_sim ran with
_DEFAULT_API_KEY = "sk_test_qstash_sim"
_SIM_KWARGS = ("seed", "payment", "deliver_to", "api_key", "strict")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("qstash-sim", "qstash-sim simulator fixture")
    group.addoption(
        "--qstash-sim-seed",
        dest="qstash_sim_seed",
        default=None,
        metavar="SEED",
        help="seed for every qstash_sim (an int, or 'random' for one per session); default: ini or 0",
    )
    group.addoption(
        "--qstash-sim-scenario",
        dest="qstash_sim_scenario",
        action="append",
        default=None,
        metavar="NAME|PATH",
        help="scenario loaded for every test without a qstash_scenario marker (repeatable)",
    )
    parser.addini("qstash_sim_seed", "default seed for qstash_sim (int or 'random')", default=None)
    parser.addini(
        "qstash_sim_scenario", "scenarios loaded for every test (names or paths)", type="linelist", default=[]
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "qstash_sim(seed=None, payment=None, deliver_to=(), api_key=None, strict=False): "
        "configure this test's qstash_sim",
    )
    config.addinivalue_line(
        "markers",
        "qstash_scenario(*names_or_paths, seed=None): load scenarios (shipped name, path, dict or YAML text)",
    )
    config.stash[_SEED] = _session_seed(config)
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_XdistSeed(config.stash[_SEED]), "qstash_sim_xdist")


class _XdistSeed:
    """Hands the controller's seed to every worker, so ``random`` means one seed for the whole run."""

    def __init__(self, seed: tuple[int, str]) -> None:
        self.seed = seed

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["qstash_sim_seed"] = list(self.seed)


def _session_seed(config: pytest.Config) -> tuple[int, str]:
    worker = getattr(config, "workerinput", None)
    if worker and "qstash_sim_seed" in worker:
        seed, where = worker["qstash_sim_seed"]
        return int(seed), str(where)
    value, where = config.getoption("qstash_sim_seed"), "--qstash-sim-seed"
    if value is None:
        value, where = config.getini("qstash_sim_seed"), "ini qstash_sim_seed"
    if value in (None, ""):
        return 0, "default"
    if str(value).strip().lower() == "random":
        return random.SystemRandom().randrange(2**31), f"{where}=random"
    try:
        return int(str(value)), where
    except ValueError:
        raise pytest.UsageError(f"{where}: expected an int or 'random', got {value!r}") from None


def pytest_report_header(config: pytest.Config) -> str:
    seed, where = config.stash[_SEED]
    scenarios = _default_scenarios(config)
    return f"qstash-sim: seed {seed} ({where}), scenario {', '.join(scenarios) or 'none'}"


def _default_scenarios(config: pytest.Config) -> list[str]:
    return list(config.getoption("qstash_sim_scenario") or config.getini("qstash_sim_scenario") or [])


def _resolve(source: Any, base: Path, rootpath: Path) -> Any:
    """A relative path is looked up next to the test file, then at the rootdir; names pass through."""
    if isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml", ".json")):
        for folder in (base, rootpath):
            if (folder / source).is_file():
                return str(folder / source)
    return str(source) if isinstance(source, Path) else source


def _config_for(item: pytest.Item) -> SimConfig:
    """The test's config from its closest ``qstash_sim``/``qstash_scenario`` markers and the options."""
    from .server import SimConfig

    config = item.config
    seed = config.stash[_SEED][0]
    kwargs: dict[str, Any] = {}
    base = Path(str(item.path)).parent
    scenarios = tuple(_resolve(s, base, config.rootpath) for s in _default_scenarios(config))
    scen = item.get_closest_marker("qstash_scenario")
    if scen is not None:
        extra = set(scen.kwargs) - {"seed"}
        if extra:
            pytest.fail(f"qstash_scenario got unknown argument(s) {sorted(extra)}; expected seed=", pytrace=False)
        if not scen.args:
            pytest.fail("qstash_scenario needs a scenario, e.g. qstash_scenario('flaky-destination')", pytrace=False)
        scenarios = tuple(_resolve(s, base, config.rootpath) for s in scen.args)
        seed = scen.kwargs.get("seed", seed)
    mark = item.get_closest_marker("qstash_sim")
    if mark is not None:
        extra = set(mark.kwargs) - set(_SIM_KWARGS)
        if mark.args or extra:
            pytest.fail(
                f"qstash_sim takes keyword arguments {', '.join(_SIM_KWARGS)}; got {[*mark.args, *sorted(extra)]}",
                pytrace=False,
            )
        kwargs = dict(mark.kwargs)
        seed = kwargs.pop("seed", seed)
    if isinstance(seed, bool) or not isinstance(seed, int):
        pytest.fail(f"qstash-sim: seed must be an int, got {seed!r}", pytrace=False)
    deliver_to = kwargs.get("deliver_to", ())
    return SimConfig(
        seed=seed,
        scenarios=scenarios,
        payment=kwargs.get("payment"),
        deliver_to=(deliver_to,) if isinstance(deliver_to, str) else tuple(deliver_to),
        api_key=kwargs.get("api_key") or _DEFAULT_API_KEY,
        strict=bool(kwargs.get("strict", False)),
    )


def _open(server: SimServer, cfg: SimConfig) -> QstashSim:
    """The handle for one test; a bad scenario or payment mode fails the setup with just its message."""
    from qstash_sim.errors import ConfigError

    from .handle import QstashSim

    try:
        return QstashSim.open(server, cfg)
    except (ConfigError, ValueError) as exc:
        message = f"qstash-sim: {type(exc).__name__}: {exc}"
    pytest.fail(message, pytrace=False)  # outside the except: no "during handling" chain in the report


@pytest.fixture(scope="session")
def _qstash_sim_server() -> Iterator[SimServer]:
    """The session's server: started on first use (port 0), stopped at the end of the session."""
    from .server import SimServer

    server = SimServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def qstash_sim(request: pytest.FixtureRequest, _qstash_sim_server: SimServer) -> Iterator[QstashSim]:
    """A clean simulator for this test: fresh state, clock at 2026-01-01T00:00Z, seed from options/markers."""
    cfg = _config_for(request.node)
    request.node.stash[_USED] = cfg
    sim = _open(_qstash_sim_server, cfg)
    yield sim
    sim.finish()


@pytest.fixture(scope="session")
def _qstash_receiver_server(_qstash_sim_server: SimServer) -> Iterator[Receiver]:
    """The session's built-in receiver (one loopback port), verifying against the session server's keys."""
    from qstash_sim.receiver import Receiver

    receiver = Receiver(keys=_qstash_sim_server.account_keys).start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def qstash_receiver(qstash_sim: QstashSim, _qstash_receiver_server: Receiver) -> Iterator[Receiver]:
    """A loopback destination for this test (like pytest-httpserver's ``httpserver``): publish to
    ``qstash_receiver.url("/hook")``, then read ``qstash_receiver.deliveries`` (each with ``.json``,
    ``.headers``, ``.verified`` and, when not, ``.verification.reason``). ``respond(503, fail_first=2)``
    scripts its answers. Cleared before each test."""
    _qstash_receiver_server.clear()
    yield _qstash_receiver_server
    _qstash_receiver_server.clear()


@pytest.fixture
def qstash_sim_async(qstash_sim: QstashSim) -> AsyncQstashSim:
    """:fixture:`qstash_sim` with awaitable verbs (``await sim.clock.advance("31h")``) for async tests."""
    return qstash_sim.aio


@pytest.fixture
def qstash_sim_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., QstashSim]]:
    """Start extra, independent simulators (each on its own server): ``other = qstash_sim_factory(seed=2)``."""
    made: list[tuple[SimServer, QstashSim]] = []
    default_seed = request.config.stash[_SEED][0]

    def make(
        *,
        seed: int | None = None,
        scenario: Any = (),
        payment: str | None = None,
        deliver_to: Any = (),
        api_key: str = _DEFAULT_API_KEY,
        strict: bool = False,
    ) -> QstashSim:
        from .server import SimConfig, SimServer

        scenarios = (scenario,) if isinstance(scenario, str | Path | Mapping) else tuple(scenario)
        cfg = SimConfig(
            seed=default_seed if seed is None else seed,
            scenarios=scenarios,
            payment=payment,
            deliver_to=(deliver_to,) if isinstance(deliver_to, str) else tuple(deliver_to),
            api_key=api_key,
            strict=strict,
        )
        server = SimServer.start(cfg.seed)
        try:
            sim = _open(server, cfg)
        except BaseException:
            server.stop()
            raise
        made.append((server, sim))
        return sim

    yield make
    errors: list[BaseException] = []
    for server, sim in made:
        try:
            sim.finish()
        except BaseException as exc:  # noqa: BLE001 - stop every server before raising
            errors.append(exc)
        finally:
            server.stop()
    if errors:
        raise errors[0]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failure of a test that used qstash_sim, print the seed and how to replay it."""
    report: pytest.TestReport = yield
    cfg = item.stash.get(_USED, None)
    if cfg is not None and report.failed:
        report.sections.append(
            ("qstash-sim", f"{cfg.describe()}\nreplay: pytest {item.nodeid!r} --qstash-sim-seed={cfg.seed}")
        )
    return report
