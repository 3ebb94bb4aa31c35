"""Validated publish throughput: ``wrk`` with keep-alive connections posts a JSON publish (two validated
``Upstash-*`` headers) to qstash-sim, to Prism serving the same openapi.yaml, and to the bare aiohttp
ceiling, in alternating rounds. Each round starts a fresh server, warms it up, then measures.

Both surfaces are measured in the same run: Sapiom's gateway (``/v1/qstash/publish``) and native QStash
(``/v2/publish`` with ``Authorization: Bearer``), each against Prism serving the same operation of the
same openapi.yaml."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .harness import (
    Progress,
    Report,
    Row,
    ServerProcess,
    bare_argv,
    free_port,
    median,
    prism_argv,
    show,
    sim_argv,
    wrk,
    wrk_argv,
)

TARGET_RPS = 6000.0
TARGET_VS_PRISM = 3.75
TARGET_V2_VS_V1 = 0.90  # /v2 publish within 10 % of /v1 publish
WARMUP_S = 3.0

System = tuple[Callable[[int], list[str]], str]  # argv for a port, surface


def _systems(prism: Path | None) -> dict[str, System]:
    systems: dict[str, System] = {
        "qstash-sim": (sim_argv, "v1"),
        "qstash-sim /v2": (sim_argv, "v2"),
        "bare aiohttp": (bare_argv, "v1"),
    }
    if prism is not None:
        systems["Prism"] = (lambda port: prism_argv(prism, port), "v1")
        systems["Prism /v2"] = (lambda port: prism_argv(prism, port), "v2")
    return systems


def _measure(
    progress: Progress, systems: dict[str, System], *, rounds: int, seconds: float, connections: int
) -> tuple[dict[str, list[float]], list[float]]:
    rps: dict[str, list[float]] = {name: [] for name in systems}
    rss: list[float] = []
    names = list(systems)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            argv, surface = systems[name]
            port = free_port()
            with ServerProcess(name, argv(port), port) as server:
                server.start()
                progress.step(f"throughput: round {r + 1}/{rounds}, {name} (warm-up)")
                wrk(port, connections=connections, seconds=WARMUP_S, surface=surface)  # Prism (V8) needs JIT time
                progress.step(f"throughput: round {r + 1}/{rounds}, {name} ({seconds:g} s, {connections} connections)")
                rps[name].append(wrk(port, connections=connections, seconds=seconds, surface=surface))
                if name == "qstash-sim":
                    rss.append(server.rss_mib())
    return rps, rss


def _v1_row(med: dict[str, float], connections: int) -> Row:
    sim, bare = med["qstash-sim"], med["bare aiohttp"]
    compared = [f"bare aiohttp {bare:,.0f} req/s (sim = {sim / bare:.2f}x)"]
    target = f">= {TARGET_RPS:,.0f} req/s"
    met = sim >= TARGET_RPS
    if "Prism" in med:
        compared.insert(0, f"Prism {med['Prism']:,.0f} req/s (sim = {sim / med['Prism']:.2f}x)")
        target += f", >= {TARGET_VS_PRISM}x Prism"
        met = met and sim >= TARGET_VS_PRISM * med["Prism"]
    label = f"validated publish /v1/qstash, wrk {connections} keep-alive connections (median)"
    return Row(label, f"{sim:,.0f} req/s", "; ".join(compared), target, met)


def _v2_row(med: dict[str, float], connections: int) -> Row:
    v2, v1 = med["qstash-sim /v2"], med["qstash-sim"]
    compared = [f"/v1/qstash {v1:,.0f} req/s (v2 = {v2 / v1:.2f}x)"]
    target = f">= {TARGET_V2_VS_V1:.2f}x /v1"
    met = v2 >= TARGET_V2_VS_V1 * v1
    if "Prism /v2" in med:
        compared.append(f"Prism /v2 {med['Prism /v2']:,.0f} req/s (sim = {v2 / med['Prism /v2']:.2f}x)")
        target += f", >= {TARGET_VS_PRISM}x Prism"
        met = met and v2 >= TARGET_VS_PRISM * med["Prism /v2"]
    label = f"validated publish /v2 (QStash), wrk {connections} keep-alive connections (median)"
    return Row(label, f"{v2:,.0f} req/s", "; ".join(compared), target, met)


def run(progress: Progress, *, rounds: int, seconds: float, connections: int, prism: Path | None) -> Report:
    """Median req/s of each system over ``rounds`` alternating rounds of ``seconds`` each."""
    systems = _systems(prism)
    rps, rss = _measure(progress, systems, rounds=rounds, seconds=seconds, connections=connections)
    med = {name: median(v) for name, v in rps.items()}
    report = Report(
        rows=[_v1_row(med, connections), _v2_row(med, connections)],
        commands=[
            show(wrk_argv(0, connections=connections, seconds=seconds, surface=s)).replace(":0/", ":PORT/")
            for s in ("v1", "v2")
        ],
    )
    spread = ", ".join(f"{n} {min(v):,.0f}-{max(v):,.0f}" for n, v in rps.items())
    report.notes.append(
        f"Throughput: {rounds} alternating rounds of {seconds:g} s after a {WARMUP_S:g} s warm-up, "
        "fresh server each round; "
        f"range (req/s) {spread}. wrk runs one thread so that server and load generator each get one of the "
        f"2 cores. The simulator also stores each message and runs its delivery engine on the same loop "
        f"(messages carry Upstash-Delay: 10s, so nothing is delivered during the run); RSS after a round: "
        f"{median(rss):.0f} MiB. The /v2 load is the same request with `Authorization: Bearer bench-token` "
        "on `/v2/publish/...` (any token is its own account on `serve`)."
    )
    return report
