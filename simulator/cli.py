"""The ``qstash-sim`` command line: ``serve`` runs the simulator; ``check`` validates scenario files."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import sys
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from qstash_sim.base.durations import parse_duration
from qstash_sim.base.version import __version__
from qstash_sim.domain.delivery import DEFAULT_REGION, check_region
from qstash_sim.domain.world import Limits
from qstash_sim.engine.transport import is_loopback_host
from qstash_sim.errors import UnsupportedAiohttpVersion

EPILOG = """examples:
  qstash-sim serve                                   # http://127.0.0.1:8080, real clock, seed 0
  qstash-sim serve --port 0 --clock virtual --seed 7 # any free port; time moves via /_sim/clock/advance
  qstash-sim serve --deliver-to '*.example.com'      # also really deliver to these hosts
  qstash-sim serve --scenario flaky-destination      # a shipped fault scenario, or a YAML file (repeatable)
  qstash-sim check my-faults.yaml                    # validate scenario files without serving

then:
  curl -X POST http://127.0.0.1:8080/v1/qstash/publish/http://127.0.0.1:9000/hook -d '{"hi":1}'
"""


def _size(text: str) -> int:
    """``"1MiB"``, ``"512KiB"``, ``"1000"`` -> bytes."""
    units = {"kib": 1024, "mib": 1024**2, "gib": 1024**3, "kb": 1000, "mb": 1000**2, "b": 1}
    low = text.strip().lower()
    for suffix, mult in units.items():
        if low.endswith(suffix) and low[: -len(suffix)].strip().isdigit():
            return int(low[: -len(suffix)]) * mult
    if low.isdigit():
        return int(low)
    raise argparse.ArgumentTypeError(f"expected a size such as 1048576, 512KiB or 1MiB, got {text!r}")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, such as 30 or 0.5, got {text!r}")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def _count0(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return int(text)


def _status(text: str) -> int:
    if not text.isdigit() or not 100 <= int(text) <= 599:
        raise argparse.ArgumentTypeError(f"expected an HTTP status from 100 to 599, got {text!r}")
    return int(text)


def _seed(text: str) -> int:
    if not text.isdigit() or int(text) > 2**32 - 1:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to 4294967295, got {text!r}")
    return int(text)


_LIMIT_DEFAULTS = {f.name.replace("_", "-"): f.default for f in fields(Limits)}


def _limit(text: str) -> tuple[str, int | None]:
    """``"journal=5000"`` -> ``("journal", 5000)``; ``"ledger=none"`` -> ``("ledger", None)``."""
    name, sep, value = text.partition("=")
    key = name.strip().lower().replace("_", "-")
    if not sep or key not in _LIMIT_DEFAULTS:
        raise argparse.ArgumentTypeError(
            f"expected STORE=N with STORE one of {', '.join(_LIMIT_DEFAULTS)}, got {text!r}"
        )
    v = value.strip().lower()
    if v == "none":
        return key.replace("-", "_"), None
    if not v.isdigit():
        raise argparse.ArgumentTypeError(f"{key}: expected a count (0 or more) or 'none', got {value!r}")
    return key.replace("-", "_"), int(v)


def _region(text: str) -> str:
    try:
        return check_region(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _timeout(text: str) -> int:
    try:
        ms = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if ms <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration > 0 such as 30s, 5m or 2h, got {text!r}")
    return ms


def _token(text: str) -> str:
    """``TOKEN[=ACCOUNT]``, checked (kept as given: ``parse_token_option`` splits it)."""
    from qstash_sim.core.tokens import MAX_TOKEN_LENGTH, parse_token_option

    token, _ = parse_token_option(text)
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise argparse.ArgumentTypeError(
            f"expected TOKEN or TOKEN=ACCOUNT (1-{MAX_TOKEN_LENGTH} characters), got {text!r}"
        )
    return text


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to render the README's option table)."""
    parser = argparse.ArgumentParser(
        prog="qstash-sim",
        description="A local, deterministic stand-in for Sapiom's messaging API (Upstash QStash behind "
        "/v1/qstash/...), with a delivery engine on a virtual clock.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"qstash-sim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_serve(sub)
    from qstash_sim.dev import add_dev_parser  # `qstash-sim dev`: serve's option groups, the dev users

    add_dev_parser(sub, _add_serve_network, _add_serve_engine, _add_serve_limits)
    _add_check(sub)
    _add_receive(sub)
    return parser


def _add_receive(sub: Any) -> None:
    receive = sub.add_parser(
        "receive",
        help="run a destination that prints every delivery and checks its signature",
        description="A destination on 127.0.0.1 that answers each delivery (200 unless told otherwise) and prints "
        "it: method, path, the headers that matter, the body, and whether Upstash-Signature verifies for that URL "
        "and body with the simulator's signing keys (read from --sim), and why not when it does not.",
        epilog="example:\n  qstash-sim receive --port 9000 --fail-first 2   # 503, 503, then 200\n  curl -X POST "
        "http://127.0.0.1:8080/v1/qstash/publish/http://127.0.0.1:9000/hook -d '{\"hi\":1}'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    receive.add_argument("--port", type=_port, default=9000, help="port to listen on, on 127.0.0.1 (default: 9000)")
    receive.add_argument("--status", type=_status, default=200, help="status to answer (default: 200)")
    receive.add_argument(
        "--fail-first", type=_count0, default=0, metavar="N", help="answer the first N deliveries with 503"
    )
    receive.add_argument(
        "--sim",
        default="http://127.0.0.1:8080",
        metavar="URL",
        help="the simulator whose signing keys verify signatures (default: http://127.0.0.1:8080)",
    )
    receive.add_argument(
        "--control-token",
        default=None,
        metavar="TOKEN",
        help="the simulator's control token, if it has one (default: $QSTASH_SIM_CONTROL_TOKEN)",
    )


def _add_serve(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the simulator's HTTP server",
        description="Serve the gateway (/v1/qstash/...) and the control plane (/_sim/...) until Ctrl-C or SIGTERM.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_serve_network(serve)
    _add_serve_engine(serve)
    _add_serve_sapiom(serve)
    _add_serve_limits(serve)


def _add_serve_network(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: 127.0.0.1, loopback only). Any other address exposes the server to "
        "other machines: the control plane /_sim then requires a control token (--control-token, or one is "
        "generated and printed)",
    )
    serve.add_argument(
        "--control-token",
        default=None,
        metavar="TOKEN",
        help="every /_sim call must send it (Authorization: Bearer TOKEN or X-Qstash-Sim-Token: TOKEN), else 401 "
        "(default: $QSTASH_SIM_CONTROL_TOKEN; none on a loopback bind, a generated one on any other)",
    )
    serve.add_argument(
        "--stop-grace",
        type=_seconds,
        default=2.0,
        metavar="SECONDS",
        help="on SIGTERM or Ctrl-C, how long deliveries in flight may finish before they are cancelled; a second "
        "signal stops at once (default: 2)",
    )
    serve.add_argument("--port", type=_port, default=8080, help="port to bind; 0 picks a free one (default: 8080)")
    serve.add_argument(
        "--surface",
        action="append",
        default=[],
        choices=("sapiom", "qstash"),
        help="serve only this API surface (repeatable): sapiom (Sapiom's /v1/qstash and /v1/transactions) or "
        "qstash (native Upstash QStash /v2, what the official SDKs call); a request to a surface that is off "
        "answers 404 saying so (default: both, on one port, over one engine and one account state)",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="log verbosity (default: info)",
    )


def _add_serve_engine(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--seed",
        type=_seed,
        default=None,
        help="seed for ids and fault draws: same seed, same ids (default: the first --scenario's seed, else 0)",
    )
    serve.add_argument(
        "--clock",
        choices=("real", "virtual"),
        default="real",
        help="real: time passes as on the wall clock; virtual: time moves only via POST /_sim/clock/advance "
        "(default: real)",
    )
    serve.add_argument(
        "--deliver-to",
        action="append",
        default=[],
        metavar="PATTERN",
        help="also deliver for real to hosts matching PATTERN (fnmatch on host or host:port, repeatable); "
        "loopback is always real, every other host is virtual (recorded, answered 200)",
    )
    serve.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="FILE_OR_NAME",
        help="load a fault scenario (a YAML file or a shipped name such as flaky-destination; repeatable); "
        "POST /_sim/reset loads it again",
    )
    serve.add_argument(
        "--strict", action="store_true", help="answer 400 to unknown Upstash-* headers instead of a warning"
    )
    serve.add_argument(
        "--token",
        action="append",
        default=[],
        type=_token,
        metavar="TOKEN[=ACCOUNT]",
        help="accept TOKEN (Authorization: Bearer on /v2, x-api-key or Bearer on /v1) as ACCOUNT (default: an "
        "account named like the token); repeatable. Once one is given, every other token is refused with 401 "
        "(default: none, and any token names its own account)",
    )
    _add_delivery_options(serve)


def _add_delivery_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--order",
        choices=("seq", "shuffle"),
        default="seq",
        help="the order of the events due at one virtual instant: seq, the order they fell due, or shuffle, "
        "a seeded shuffle of each instant (other orderings of same-instant deliveries, the same for the same "
        "--seed); a workflow run's deliveries go one at a time either way (default: seq)",
    )
    parser.add_argument(
        "--region",
        type=_region,
        default=DEFAULT_REGION,
        metavar="REGION",
        help=f"the Upstash-Region header every delivery carries, e.g. US-EAST-1 (default: {DEFAULT_REGION})",
    )
    parser.add_argument(
        "--max-timeout",
        type=_timeout,
        default=None,
        metavar="DURATION",
        help="cap on how long one delivery attempt waits for its answer, over a real socket or from a virtual "
        "destination (e.g. 30s, 5m). An attempt waits its message's Upstash-Timeout, which defaults to 2h "
        "(QStash's maximum HTTP response duration on pay-as-you-go; 15m on the free plan); with this it "
        "waits at most DURATION, then fails as 'timeout after <ms>ms' (default: no cap)",
    )


def _add_serve_sapiom(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--payment",
        choices=("off", "x402", "transaction"),
        default="off",
        help="what the gateway demands before a billed call: off (nothing; plain QStash clients and curl work), "
        "x402 (a 402 first, then the paid retry: what @sapiom/fetch does), transaction (an authorized "
        "X-Sapiom-Transaction-Id) (default: off)",
    )
    serve.add_argument(
        "--payment-variant",
        choices=("v1", "v2", "v2-header", "wrapped"),
        default="v1",
        help="the shape of the 402: x402 v1 body, v2 body, v2 PAYMENT-REQUIRED header, Sapiom wrapped body "
        "(default: v1)",
    )
    serve.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help="accept only these Sapiom API keys on /v1/transactions (repeatable); default: any non-empty key, "
        "which names the account",
    )


def _add_serve_limits(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--limit",
        action="append",
        default=[],
        type=_limit,
        metavar="STORE=N",
        help="cap what the server keeps, oldest dropped first (repeatable; N a count or 'none'): "
        + ", ".join(f"{name}={default}" for name, default in _LIMIT_DEFAULTS.items())
        + " (the defaults; GET /_sim/health shows them and what was dropped)",
    )
    serve.add_argument(
        "--max-body", type=_size, default=1024 * 1024, metavar="SIZE", help="largest request body (default: 1MiB)"
    )
    serve.add_argument(
        "--max-header-size",
        type=_size,
        default=8190,
        metavar="SIZE",
        help="largest request line, and largest header field, in bytes; more answers 400 (default: 8190; "
        "at most 128 header fields)",
    )
    serve.add_argument(
        "--read-timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="seconds a request head, then its body, may take to arrive; a slower client gets 408 and is "
        "disconnected (default: 30)",
    )
    serve.add_argument(
        "--max-advance-events",
        type=_count,
        default=500_000,
        metavar="N",
        help="most events one POST /_sim/clock/advance runs before it stops with 400 (default: 500000; "
        "one advance also spans at most 400 days)",
    )


def _add_check(sub: Any) -> None:
    check = sub.add_parser(
        "check",
        help="validate fault scenario files without serving",
        description="Validate scenario files (or shipped names) against the scenario schema and openapi.yaml. "
        "Prints file:line: key.path: problem per mistake; exit status 0 when every file is valid, 1 otherwise.",
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="scenario YAML/JSON files or shipped scenario names")


async def _serve(args: argparse.Namespace) -> int:
    from qstash_sim.api import API_SURFACES, default_surfaces
    from qstash_sim.contract.load import packaged_fault_statuses
    from qstash_sim.core.tokens import parse_token_option
    from qstash_sim.http.aiohttp_app import build_app
    from qstash_sim.scenarios.check import read_scenarios
    from qstash_sim.server import start_site, stop_gracefully, tune_gc
    from qstash_sim.simulator import Simulator

    scenarios, problems = read_scenarios(args.scenario, packaged_fault_statuses())
    if problems:
        for line in problems:
            print(line, file=sys.stderr)
        return 2
    if args.seed is None:
        args.seed = next((s.seed for s in scenarios if s.seed is not None), 0)
    limits = Limits(**dict(args.limit))
    sim = Simulator(
        seed=args.seed,
        clock=args.clock,
        deliver_to=args.deliver_to,
        strict=args.strict,
        limits=limits,
        region=args.region,
        max_timeout_ms=args.max_timeout,
        order=args.order,
    )
    for scenario in scenarios:
        sim.scenarios.add(scenario, keep=True)
    sim.sapiom.configure(mode=args.payment, variant=args.payment_variant, api_keys=args.api_key)
    sim.engine.max_advance_events = args.max_advance_events
    if args.command == "dev":
        from qstash_sim.dev import setup_dev

        setup_dev(sim, args.token)
    else:
        for text in args.token:  # --token TOKEN[=ACCOUNT]: only these are accepted from now on
            sim.tokens.add(*parse_token_option(text))
    token, warning = _control_token(args)
    app = build_app(
        sim,
        default_surfaces(control_token=token, surfaces_on=args.surface or API_SURFACES),
        max_body=args.max_body,
        read_timeout=args.read_timeout,
        max_header_size=args.max_header_size,
    )
    try:
        runner, port = await start_site(app, args.host, args.port)
    except OSError as exc:
        print(f"qstash-sim: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    tune_gc()
    host = f"[{args.host}]" if ":" in args.host else args.host
    if args.command == "dev":
        from qstash_sim.dev import banner_for

        print(banner_for(args, sim, f"http://{host}:{port}", token), flush=True)
    else:
        print(_banner(args, sim, f"http://{host}:{port}", token), flush=True)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    await _until_signalled()
    print(
        f"qstash-sim: stopping (deliveries in flight get {args.stop_grace:g} s; a second signal stops at once)",
        flush=True,
    )
    unfinished = await stop_gracefully(runner, sim, args.stop_grace)
    if unfinished:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(unfinished.items()))
        print(
            f"qstash-sim: stopped with messages not finished (discarded, state is in memory only): {counts}", flush=True
        )
    return 0


def _banner(args: argparse.Namespace, sim: Any, url: str, token: str | None) -> str:
    """What ``serve`` prints once listening: the URL first (tools wait for that line), then what a user
    needs next: the clock, the surfaces, the scenarios loaded, the keys that verify deliveries, the control API."""
    keys = sim.world.accounts.keys_of(sim.anonymous_account)  # without creating the account
    scenarios = ", ".join(s.name for s in sim.scenarios) or "none (--scenario NAME_OR_FILE)"
    clock = "virtual: time moves with POST /_sim/clock/advance" if args.clock == "virtual" else "real"
    control = f"{url}/_sim" + (" (send the control token)" if token else "")
    return "\n".join(
        [
            f"qstash-sim {__version__} running at {url} — Ctrl-C to stop",
            _surfaces_line(args, url),
            f"  clock      {clock}; seed {args.seed}",
            f"  scenarios  {scenarios}",
            f"  keys       account {sim.anonymous_account!r} (requests without a key) signs with",
            f"             current {keys.current}  next {keys.next}   (every account: GET /_sim/accounts)",
            f"  control    {control}   (health, state, journal, deliveries, clock, scenarios)",
            f"  dashboard  {url}/_sim/ui" + ("?token=<the control token>" if token else ""),
        ]
    )


def _surfaces_line(args: argparse.Namespace, url: str) -> str:
    """The banner's line of API surfaces: the Sapiom gateway and native QStash ``/v2`` (or how to turn one on)."""
    on = args.surface or ("sapiom", "qstash")
    sapiom = (
        f"{url}/v1/qstash   (Sapiom API {url}/v1/transactions; payment {args.payment})"
        if "sapiom" in on
        else "off (--surface sapiom)"
    )
    qstash = f"QStash {url}/v2" if "qstash" in on else "QStash /v2 off (--surface qstash)"
    return f"  gateway    {sapiom}; {qstash}"


async def _until_signalled() -> None:
    """Wait for SIGINT/SIGTERM; from then on a second one exits at once."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def first() -> None:
        stop.set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, _at_once)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, first)
    await stop.wait()


def _at_once() -> None:
    print("qstash-sim: stopped at once (second signal)", flush=True)
    os._exit(130)


def _control_token(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(the control token, a warning to print): a non-loopback bind always has a token."""
    token = args.control_token or os.environ.get("QSTASH_SIM_CONTROL_TOKEN") or None
    if is_loopback_host(args.host):
        return token, None
    generated = token is None
    if token is None:
        token = secrets.token_urlsafe(24)
    shown = f"control token (generated): {token}" if generated else "the control token you gave"
    warning = (
        f"qstash-sim: WARNING: {args.host} is not a loopback address: other machines can reach this server. "
        f"Every /_sim call needs {shown} (Authorization: Bearer <token> or X-Qstash-Sim-Token). Deliveries "
        "still reach loopback hosts and --deliver-to hosts only."
    )
    return token, warning


def _receive(args: argparse.Namespace) -> int:
    from qstash_sim.receiver import Receiver, simulator_keys

    token = args.control_token or os.environ.get("QSTASH_SIM_CONTROL_TOKEN") or None
    try:
        receiver = Receiver(
            port=args.port,
            status=args.status,
            fail_first=args.fail_first,
            keys=simulator_keys(args.sim, token),
            on_delivery=lambda d: print(d.describe(), flush=True),
        )
    except OSError as exc:
        print(f"qstash-sim: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    failing = f", the first {args.fail_first} with 503" if args.fail_first else ""
    print(
        f"qstash-sim receiver listening at {receiver.url()} (answers {args.status}{failing}; signatures checked "
        f"with the keys of {args.sim}) - Ctrl-C to stop",
        flush=True,
    )
    try:
        receiver.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``qstash-sim`` and ``python -m qstash_sim``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command in ("serve", "dev"):
        logging.basicConfig(
            level=getattr(logging, args.log_level.upper()), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        try:
            return asyncio.run(_serve(args))
        except KeyboardInterrupt:
            return 0
        except UnsupportedAiohttpVersion as exc:
            print(exc, file=sys.stderr)  # one line: "qstash-sim cannot run on aiohttp X: why. Supported: ..."
            return 2
    if args.command == "receive":
        return _receive(args)
    if args.command == "check":
        from qstash_sim.contract.load import packaged_fault_statuses
        from qstash_sim.scenarios.check import check_main

        return check_main(args.files, packaged_fault_statuses())
    parser.error(f"unknown command {args.command!r}")
    return 2
