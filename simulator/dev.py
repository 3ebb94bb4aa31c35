"""``qstash-sim dev``: a drop-in for the official ``qstash dev`` server.

The same server as ``qstash-sim serve`` (every surface, the control plane, scenarios), set up like the
official development server: its four users (:mod:`qstash_sim.core.dev_users`) and any ``--token``, every
other token refused, and a banner whose first line is the official start line, ``... running at
http://127.0.0.1:8080`` (``@upstash/qstash`` waits for ``/runn+ing( at|\\.)/i`` when it starts a server
itself), followed by the default user's environment variables and a sample ``curl``.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from qstash_sim.base.version import __version__
from qstash_sim.core.dev_users import DEFAULT_DEV_USER, DEV_USERS, install_dev_users
from qstash_sim.core.tokens import parse_token_option

if TYPE_CHECKING:  # imported when the CLI builds its parser: no engine import for that
    from qstash_sim.core.service import SimulatorCore

__all__ = ["DEV_EPILOG", "add_dev_parser", "banner_for", "dev_banner", "setup_dev"]

DEV_EPILOG = """examples:
  qstash-sim dev                                     # http://127.0.0.1:8080, real clock, the dev users
  qstash-sim dev --port 8081 --token my-token=alice  # another port; my-token is accepted too (account alice)
  qstash-sim dev --clock virtual --scenario flaky-destination

then, with the official SDKs unchanged:
  QSTASH_DEV=true node app.mjs                       # @upstash/qstash, @upstash/workflow: nothing downloaded
  QSTASH_DEV=true QSTASH_DEV_PORT=8081 node app.mjs  # on another port
"""


def add_dev_parser(sub: Any, *groups: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    """The ``dev`` subcommand, with ``serve``'s option ``groups`` (network, engine, limits: the same options,
    the same defaults) and no Sapiom payment options (the gateway runs with payment off)."""
    dev: argparse.ArgumentParser = sub.add_parser(
        "dev",
        help="run a drop-in for the official `qstash dev` server (its users, tokens and signing keys)",
        description="Serve what `serve` serves (native QStash /v2, /v1/qstash, the control plane /_sim) as the "
        "official QStash development server does: its four users' tokens are accepted (plus any --token), every "
        "other token is refused, and GET /v2/keys answers the default user's keys, so @upstash/qstash and "
        "@upstash/workflow with QSTASH_DEV=true use it as is and download nothing. Real clock by default.",
        epilog=DEV_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for add in groups:
        add(dev)
    if not any("--token" in a.option_strings for a in dev._actions):  # unless serve's groups have it
        dev.add_argument(
            "--token",
            action="append",
            default=[],
            metavar="TOKEN[=ACCOUNT]",
            help="also accept TOKEN, as ACCOUNT (default: an account named like the token); repeatable",
        )
    dev.set_defaults(payment="off", payment_variant="v1", api_key=[])
    return dev


def banner_for(args: argparse.Namespace, sim: SimulatorCore, url: str, control_token: str | None) -> str:
    """:func:`dev_banner` for a parsed ``dev`` command line and its running simulator."""
    scenarios = [s.name for s in getattr(sim, "scenarios", ())]
    return dev_banner(
        url,
        clock=args.clock,
        seed=args.seed,
        scenarios=scenarios,
        extra_tokens=len(getattr(args, "token", None) or []),
        control_token=bool(control_token),
    )


def setup_dev(sim: SimulatorCore, tokens: Iterable[str | tuple[str, str | None]] = ()) -> None:
    """Configure ``sim`` as ``qstash dev`` is: the dev users, plus ``tokens`` (``TOKEN[=ACCOUNT]`` strings or
    ``(token, account)`` pairs, as ``--token`` gives them); any other token is refused."""
    pairs = [parse_token_option(t) if isinstance(t, str) else t for t in tokens]
    install_dev_users(sim, pairs)


def dev_banner(
    url: str,
    *,
    clock: str,
    seed: int,
    scenarios: Sequence[str] = (),
    extra_tokens: int = 0,
    control_token: bool = False,
) -> str:
    """What ``qstash-sim dev`` prints once listening: the official start line first, then what to paste into
    an app's environment (the default user's token and keys), a sample curl, and what qstash-sim adds."""
    user = DEFAULT_DEV_USER
    others = ", ".join(u.account for u in DEV_USERS[1:])
    extra = f"; {extra_tokens} more from --token" if extra_tokens else ""
    time = "virtual: time moves with POST /_sim/clock/advance" if clock == "virtual" else "real"
    curl = (
        f"curl -X POST {url}/v2/publish/https://example.com -H {shlex.quote(f'Authorization: Bearer {user.token}')}"
        f" -H 'Content-Type: application/json' -d '{{\"hello\":\"world\"}}'"
    )
    return "\n".join(
        [
            f"Upstash QStash development server is running at {url}",
            f"(qstash-sim {__version__}, a drop-in for `qstash dev`: the native /v2 API and /v1/qstash on one engine)",
            "",
            "A default user has been created for you to authorize your requests.",
            f"QSTASH_URL={url}",
            f"QSTASH_TOKEN={user.token}",
            f"QSTASH_CURRENT_SIGNING_KEY={user.current_signing_key}",
            f"QSTASH_NEXT_SIGNING_KEY={user.next_signing_key}",
            "",
            "Sample cURL request:",
            curl,
            "",
            f"  users      {user.account} (above), {others}: the official dev server's tokens and keys{extra};"
            " other tokens get 401",
            f"  clock      {time}; seed {seed}",
            f"  scenarios  {', '.join(scenarios) or 'none (--scenario NAME_OR_FILE)'}",
            f"  control    {url}/_sim{' (send the control token)' if control_token else ''}"
            "   (health, state, journal, deliveries, clock, scenarios)",
            f"  dashboard  {url}/_sim/ui" + ("?token=<the control token>" if control_token else ""),
            "  SDKs       QSTASH_DEV=true uses this server as is (set QSTASH_DEV_PORT for a port other than 8080)"
            " — Ctrl-C to stop",
        ]
    )
