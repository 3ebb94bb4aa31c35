"""Control plane for fault scenarios: ``/_sim/scenarios`` (load, list, unload). One core call each."""

from __future__ import annotations

from qstash_sim.errors import BadRequest, ConfigError, NotFound
from qstash_sim.http.surface import Ctx, Reply
from qstash_sim.scenarios.loader import ScenarioError


async def list_scenarios(ctx: Ctx) -> Reply:
    """GET /_sim/scenarios"""
    return Reply({"scenarios": ctx.sim.scenarios.describe()})


async def load_scenario(ctx: Ctx) -> Reply:
    """POST /_sim/scenarios[?name=] with YAML or JSON text: 400 lists every ``<scenario>:line: key: problem``."""
    try:
        text = ctx.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"body: expected UTF-8 YAML or JSON text ({exc.reason} at byte {exc.start})") from None
    name = ctx.query.get("name") or None
    scenarios = ctx.sim.scenarios
    try:
        scenario = scenarios.parse_text(text, name=name)
    except ScenarioError as exc:
        raise BadRequest(str(exc), body={"error": str(exc), "errors": list(exc.errors)}) from None
    except ConfigError as exc:
        raise BadRequest(str(exc), body={"error": str(exc), "errors": [str(exc)]}) from None
    scenarios.add(scenario)
    info = next(d for d in scenarios.describe() if d["name"] == scenario.name)
    return Reply(info)


async def clear_scenarios(ctx: Ctx) -> Reply:
    """DELETE /_sim/scenarios"""
    return Reply({"cleared": ctx.sim.scenarios.clear()})


async def delete_scenario(ctx: Ctx) -> Reply:
    """DELETE /_sim/scenarios/{scenarioName}"""
    name = ctx.params["scenarioName"]
    if not ctx.sim.scenarios.remove(name):
        loaded = ", ".join(s.name for s in ctx.sim.scenarios) or "none"
        raise NotFound(f"scenario {name} not found; loaded: {loaded}")
    return Reply({"deleted": name})
