"""``context.waitForEvent`` and ``notify`` on the native surface (see :mod:`qstash_sim.core.workflow_wait`).

* ``POST /v2/wait/{eventId}``: the SDK's wait request, headers of a step message of the run, body
  ``{"url", "timeout", "timeoutUrl", "timeoutHeaders", "step"}``; answers ``{}``.
* ``POST /v2/notify/{eventId}`` and ``POST /v2/notify/{workflowRunId}/{eventId}``: the body is the event
  data; answers ``[{"waiter", "messageId", "error"}]``.
* ``GET /v2/waiters/{eventId}``: ``[Waiter]``.
* ``ANY /v2/workflows/hooks/{userId}/{workflowRunId}/{eventId}`` (no token: ``createWebhook``'s URL, called
  by anyone): the request becomes the event of the run's ``waitForWebhook`` (kept until it waits), its
  data ``{"method", "header", "body" (base64), "proto", "host", "url"}``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from qstash_sim.api.qstash_v2.config import merged_headers, url_at
from qstash_sim.api.qstash_v2.workflow import workflow_message
from qstash_sim.base.durations import parse_duration
from qstash_sim.domain.commands import Caller
from qstash_sim.domain.workflow import Waiter
from qstash_sim.errors import BadRequest, NotFound
from qstash_sim.http.headers import QSTASH, parse_settings
from qstash_sim.http.surface import Ctx, Reply

__all__ = ["get_waiters", "hook", "notify", "notify_run", "wait", "waiter_view"]


def waiter_view(w: Waiter) -> dict[str, Any]:
    """A waiter as the SDK's ``Waiter`` type reads it."""
    return {
        "url": w.url,
        "deadline": w.deadline_ms,
        "headers": w.headers,
        "timeoutUrl": w.timeout_url,
        "timeoutBody": None,
        "timeoutHeaders": w.timeout_headers,
    }


def _timeout_ms(value: Any) -> tuple[str, int]:
    text = f"{value}s" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    try:
        ms = parse_duration(text)
    except ValueError as exc:
        raise BadRequest(f"body /timeout: expected a duration such as 1d or 30s, got {value!r} ({exc})") from None
    if ms <= 0:
        raise BadRequest(f"body /timeout: expected more than zero, got {value!r}")
    return text, ms


async def wait(ctx: Ctx) -> Reply:
    """POST /v2/wait/{eventId}"""
    wf = workflow_message(ctx.headers)
    if wf is None or wf.init:
        raise BadRequest("header Upstash-Workflow-RunId: required (with Upstash-Workflow-Init: false) on a wait")
    body: dict[str, Any] = ctx.json
    url = url_at(body["url"], "body /url")
    timeout_url = url_at(body.get("timeoutUrl") or url, "body /timeoutUrl")
    timeout, ms = _timeout_ms(body.get("timeout", "7d"))
    given = body.get("timeoutHeaders") or {}
    flat = {k: v[0] for k, v in given.items() if v}
    headers = merged_headers(ctx)
    kept = {k: [v] for k, v in headers.items() if k.lower().startswith("upstash-") or k.lower() == "content-type"}
    now = ctx.sim.world.now
    waiter = Waiter(
        account=ctx.caller.account,
        run_id=wf.run_id,
        event_id=ctx.params["eventId"],
        url=url,
        timeout=timeout,
        deadline_ms=now + ms,
        step=dict(body["step"]),
        headers=kept,
        timeout_url=timeout_url,
        timeout_headers={k: list(v) for k, v in given.items()},
        notify=parse_settings(url, headers, warn=ctx.warn, dialect=QSTASH),
        on_timeout=parse_settings(timeout_url, flat, where="body /timeoutHeaders", warn=ctx.warn, dialect=QSTASH),
        wf_notify=wf,
        wf_timeout=workflow_message(flat, "body /timeoutHeaders") or wf,
        created_ms=now,
    )
    ctx.sim.workflows.waits.wait(ctx.caller, waiter)
    return Reply({})


def _woken(ctx: Ctx, run_id: str | None) -> Reply:
    woken = ctx.sim.workflows.waits.notify(ctx.caller, ctx.params["eventId"], ctx.body, run_id)
    return Reply([{"waiter": waiter_view(w), "messageId": mid, "error": ""} for w, mid in woken])


async def notify(ctx: Ctx) -> Reply:
    """POST /v2/notify/{eventId}"""
    return _woken(ctx, None)


async def notify_run(ctx: Ctx) -> Reply:
    """POST /v2/notify/{workflowRunId}/{eventId}"""
    return _woken(ctx, ctx.params["workflowRunId"])


async def get_waiters(ctx: Ctx) -> Reply:
    """GET /v2/waiters/{eventId}"""
    return Reply([waiter_view(w) for w in ctx.sim.workflows.waits.of_event(ctx.caller, ctx.params["eventId"])])


async def hook(ctx: Ctx) -> Reply:
    """ANY /v2/workflows/hooks/{userId}/{workflowRunId}/{eventId}"""
    run = ctx.sim.workflows.run(ctx.params["workflowRunId"])
    if run.finished:
        raise NotFound(f"workflow run {run.run_id} has ended ({run.state.value})")
    req = ctx.request
    header: dict[str, list[str]] = {}
    for name, value in req.headers.items():
        header.setdefault(name, []).append(value)
    event = {
        "method": req.method,
        "header": header,
        "body": base64.b64encode(ctx.body).decode("ascii"),
        "proto": req.scheme,
        "host": req.host,
        "url": req.raw_path,
    }
    data = json.dumps(event, separators=(",", ":")).encode()
    woken = ctx.sim.workflows.waits.notify(Caller(account=run.account), ctx.params["eventId"], data, run.run_id)
    return Reply({"messageId": woken[0][1]} if woken else {})
