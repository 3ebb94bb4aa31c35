"""The REST trigger of Upstash Workflow: ``POST /v2/trigger/{url}`` and ``POST /v2/batch/trigger``.

A caller without the SDK starts a run with plain QStash headers. The simulator fills in the workflow
protocol headers ``@upstash/workflow``'s ``client.trigger`` would send (init, run id, URL, feature set,
the forwarded SDK version, the failure-callback wiring to the workflow URL) and publishes the result as
the run's trigger, so the first delivery is what an SDK trigger's is; the run is marked ``rest_trigger =
"sdk"``: an answer without ``Upstash-Workflow-Sdk: v1...`` fails it (QStash: "only usable with sdk
versions after v1.0.0").

With ``Upstash-Workflow-Unknown-Sdk: true`` only the run id, URL and init go with it, and the delivery
carries ``Upstash-Workflow-Unknown-Sdk: true``: the SDK then triggers the same run id itself
(``upstash-workflow-trigger-by-sdk: true``), which :meth:`Workflows._adopt` turns into the run's start.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from qstash_sim.api.qstash_v2.config import batch_items, merged_headers, target, url_at
from qstash_sim.api.qstash_v2.workflow import workflow_message
from qstash_sim.base.seed import RUN
from qstash_sim.domain.commands import PublishCommand, PublishResult
from qstash_sim.domain.workflow import WorkflowRun
from qstash_sim.errors import BadRequest
from qstash_sim.http.headers import QSTASH, parse_settings
from qstash_sim.http.surface import Ctx, Reply

__all__ = ["batch_trigger", "iso_ms", "trigger", "trigger_headers"]

FEATURES = "LazyFetch,InitialBody,WF_DetectTrigger,WF_TriggerOnConfig"  # what @upstash/workflow 1.3.3 sends
_FC = "Upstash-Failure-Callback-"


def iso_ms(ms: int) -> str:
    """``1767225600000`` -> ``"2026-01-01T00:00:00.000Z"``."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def trigger_headers(headers: Mapping[str, str], url: str, run_id: str) -> tuple[dict[str, str], bool]:
    """The headers of an SDK trigger of ``run_id`` at ``url`` made from a REST trigger's, and whether it
    asked for the unknown-SDK path. The caller's own ``Upstash-Workflow-*`` headers are replaced."""
    low = {k.lower(): v for k, v in headers.items()}
    unknown = low.get("upstash-workflow-unknown-sdk", "").strip().lower() == "true"
    out = {k: v for k, v in headers.items() if not k.lower().startswith(("upstash-workflow-", "upstash-feature-set"))}
    out.update({"Upstash-Workflow-Init": "true", "Upstash-Workflow-RunId": run_id, "Upstash-Workflow-Url": url})
    if unknown:
        out["Upstash-Forward-Upstash-Workflow-Unknown-Sdk"] = "true"
        return out, True
    out["Upstash-Feature-Set"] = FEATURES
    out["Upstash-Workflow-Sdk-Version"] = "1"
    out["Upstash-Forward-Upstash-Workflow-Sdk-Version"] = "1"
    out = {k: v for k, v in out.items() if k.lower() != "upstash-failure-callback"}
    out["Upstash-Failure-Callback"] = low.get("upstash-failure-callback") or url
    wiring = {
        "Forward-Upstash-Workflow-Is-Failure": "true",
        "Forward-Upstash-Workflow-Failure-Callback": "true",
        "Workflow-Runid": run_id,
        "Workflow-Init": "false",
        "Workflow-Url": url,
        "Workflow-Calltype": "failureCall",
        "Feature-Set": FEATURES,
    }
    for name, value in headers.items():
        if name.lower().startswith("upstash-forward-"):
            wiring[f"Forward-{name[len('upstash-forward-') :]}"] = value
    for name in ("Retries", "Retry-Delay"):
        if f"upstash-{name.lower()}" in low and f"upstash-failure-callback-{name.lower()}" not in low:
            wiring[name] = low[f"upstash-{name.lower()}"]
    out.update({_FC + k: v for k, v in wiring.items()})
    return out, False


def _start(
    ctx: Ctx, url: str, headers: Mapping[str, str], body: bytes, where: str
) -> tuple[PublishResult, WorkflowRun]:
    run_id = next((v for k, v in headers.items() if k.lower() == "upstash-workflow-runid"), None)
    if run_id is None:
        run_id = ctx.sim.world.seed.ids(RUN).new("wfr")
    hdrs, unknown = trigger_headers(headers, url, run_id)
    wf = workflow_message(hdrs, where)
    assert wf is not None  # trigger_headers always sets Upstash-Workflow-RunId
    settings = parse_settings(url, hdrs, where=where, warn=ctx.warn, dialect=QSTASH)
    result = ctx.sim.workflows.publish(ctx.caller, PublishCommand(settings, body), wf)
    run = ctx.sim.workflows.run(run_id, ctx.caller.account)
    if not result.deduplicated:
        run.rest_trigger = "unknown-sdk" if unknown else "sdk"
    return result, run


def _answer(result: PublishResult, run: WorkflowRun, *, batch: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"workflowRunId": run.run_id, "workflowCreatedAt": run.created_ms}
    if batch or result.deduplicated:
        out["deduplicated"] = result.deduplicated
    return out


async def trigger(ctx: Ctx) -> Reply:
    """POST /v2/trigger/{destination}: one run; 200 ``{"workflowRunId", "workflowCreatedAt"}``."""
    dest = target(ctx, ctx.params["destination"])
    if dest.url is None:
        raise BadRequest("path destination: a workflow is triggered at a URL, not at a URL group")
    ctx.sim.refuse_self(dest.url, "path destination")
    result, run = _start(ctx, dest.url, merged_headers(ctx, dest.config), ctx.body, "header")
    ids = [] if result.deduplicated else [result.message_id]
    return Reply(_answer(result, run, batch=False), message_ids=ids, quantity=len(ids))


async def batch_trigger(ctx: Ctx) -> Reply:
    """POST /v2/batch/trigger: every item checked first, then one run each; 201 ``[{...}, ...]``."""
    items = batch_items(ctx, ctx.surface.contract.operation("qstash.publish"))  # checks every item's headers
    raw: list[Any] = ctx.json if isinstance(ctx.json, list) else []
    for i, (_, group) in enumerate(items):
        if group is not None:
            raise BadRequest(f"body /{i}/destination: a workflow is triggered at a URL, not at a URL group")
        ctx.sim.refuse_self(url_at(raw[i]["destination"], f"body /{i}/destination"), f"body /{i}/destination")
    out: list[dict[str, Any]] = []
    ids: list[str] = []
    for i, (cmd, _) in enumerate(items):
        headers = {k: v for k, v in (raw[i].get("headers") or {}).items() if isinstance(v, str)}
        result, run = _start(ctx, cmd.settings.url, headers, cmd.body, f"body /{i}/headers")
        out.append(_answer(result, run, batch=True))
        ids.extend([] if result.deduplicated else [result.message_id])
    return Reply(out, status=201, message_ids=ids, quantity=len(ids))
