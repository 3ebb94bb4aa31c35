"""Validated publish throughput: ``wrk`` with keep-alive connections posts a JSON publish (two validated
``Upstash-*`` headers) to qstash-sim, to Prism serving the same openapi.yaml, and to the bare aiohttp
ceiling, in alternating rounds. Each round starts a fresh server, warms it up for 1 s, then measures."""

from __future__ import annotations

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
WARMUP_S = 3.0


def run(progress: Progress, *, rounds: int, seconds: float, connections: int, prism: Path | None) -> Report:
    """Median req/s of each system over ``rounds`` alternating rounds of ``seconds`` each."""
    systems = {"qstash-sim": sim_argv, "bare aiohttp": bare_argv}
    if prism is not None:
        systems["Prism"] = lambda port: prism_argv(prism, port)
    rps: dict[str, list[float]] = {name: [] for name in systems}
    rss: list[float] = []
    names = list(systems)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            port = free_port()
            with ServerProcess(name, systems[name](port), port) as server:
                server.start()
                progress.step(f"throughput: round {r + 1}/{rounds}, {name} (warm-up)")
                wrk(port, connections=connections, seconds=WARMUP_S)  # Prism (V8) needs a few seconds of JIT
                progress.step(f"throughput: round {r + 1}/{rounds}, {name} ({seconds:g} s, {connections} connections)")
                rps[name].append(wrk(port, connections=connections, seconds=seconds))
                if name == "qstash-sim":
                    rss.append(server.rss_mib())
    med = {name: median(v) for name, v in rps.items()}
    sim, bare = med["qstash-sim"], med["bare aiohttp"]
    compared = [f"bare aiohttp {bare:,.0f} req/s (sim = {sim / bare:.2f}x)"]
    target = f">= {TARGET_RPS:,.0f} req/s"
    met = sim >= TARGET_RPS
    if "Prism" in med:
        compared.insert(0, f"Prism {med['Prism']:,.0f} req/s (sim = {sim / med['Prism']:.2f}x)")
        target += f", >= {TARGET_VS_PRISM}x Prism"
        met = met and sim >= TARGET_VS_PRISM * med["Prism"]
    report = Report(
        rows=[
            Row(
                f"validated publish, wrk {connections} keep-alive connections (median)",
                f"{sim:,.0f} req/s",
                "; ".join(compared),
                target,
                met,
            )
        ],
        commands=[show(wrk_argv(0, connections=connections, seconds=seconds)).replace(":0/", ":PORT/")],
    )
    spread = ", ".join(f"{n} {min(v):,.0f}-{max(v):,.0f}" for n, v in rps.items())
    report.notes.append(
        f"Throughput: {rounds} alternating rounds of {seconds:g} s after a {WARMUP_S:g} s warm-up, "
        "fresh server each round; "
        f"range (req/s) {spread}. wrk runs one thread so that server and load generator each get one of the "
        f"2 cores. The simulator also stores each message and runs its delivery engine on the same loop "
        f"(messages carry Upstash-Delay: 10s, so nothing is delivered during the run); RSS after a round: "
        f"{median(rss):.0f} MiB."
    )
    return report
