"""Start-to-first-response: spawn a standalone server, poll ``GET /_sim/health`` every 2 ms, stop the watch
at the first 200. qstash-sim, Prism (same openapi.yaml) and the bare aiohttp ceiling take turns; so does
``qstash-sim dev``, polled on what the official SDKs probe first with ``QSTASH_DEV=true``: ``GET /v2/keys``
with the default dev user's token."""

from __future__ import annotations

import re
from pathlib import Path

from .harness import (
    Progress,
    Report,
    Row,
    ServerProcess,
    bare_argv,
    dev_argv,
    free_port,
    median,
    prism_argv,
    show,
    sim_argv,
)

TARGET_S = 0.400
TARGET_DEV_VS_BARE = 2.0
DEV_TOKEN = "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0="
DEV_PROBE = f"/v2/keys?qstash_token={DEV_TOKEN}"


def run(progress: Progress, *, rounds: int, prism: Path | None) -> Report:
    """``rounds`` alternating starts of each system; medians and ratios."""
    systems = {"qstash-sim": sim_argv, "bare aiohttp": bare_argv, "qstash-sim dev": dev_argv}
    if prism is not None:
        systems["Prism"] = lambda port: prism_argv(prism, port)
    probes = {"qstash-sim dev": DEV_PROBE}
    times: dict[str, list[float]] = {name: [] for name in systems}
    names = list(systems)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]  # rotate who goes first
        for name in order:
            progress.step(f"startup: round {r + 1}/{rounds}, {name}")
            port = free_port()
            with ServerProcess(name, systems[name](port), port, probes.get(name, "/_sim/health")) as server:
                times[name].append(server.start())
    med = {name: median(v) for name, v in times.items()}
    sim = med["qstash-sim"]
    compared = [f"bare aiohttp {med['bare aiohttp'] * 1000:.0f} ms"]
    if "Prism" in med:
        compared.insert(0, f"Prism {med['Prism'] * 1000:.0f} ms ({med['Prism'] / sim:.1f}x slower)")
    report = Report(
        rows=[
            Row(
                "standalone start to first response (median)",
                f"{sim * 1000:.0f} ms",
                "; ".join(compared),
                f"< {TARGET_S * 1000:.0f} ms",
                sim < TARGET_S,
            ),
            Row(
                "qstash-sim dev start to first GET /v2/keys (median)",
                f"{med['qstash-sim dev'] * 1000:.0f} ms",
                f"bare aiohttp {med['bare aiohttp'] * 1000:.0f} ms "
                f"(dev = {med['qstash-sim dev'] / med['bare aiohttp']:.2f}x)",
                f"<= {TARGET_DEV_VS_BARE:g}x bare aiohttp",
                med["qstash-sim dev"] <= TARGET_DEV_VS_BARE * med["bare aiohttp"],
            ),
        ],
        commands=[re.sub(r"(--port|-p) 0\b", r"\1 PORT", show(systems[n](0))) for n in names],
    )
    spread = ", ".join(f"{n} {min(v) * 1000:.0f}-{max(v) * 1000:.0f} ms" for n, v in times.items())
    report.notes.append(f"Start-up: {rounds} alternating starts each, polled every 2 ms; range {spread}.")
    return report
