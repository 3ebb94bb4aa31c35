"""The dashboard's surface: ``GET /_sim/ui`` (the page), ``GET /_sim/ui/{asset}`` (its files) and
``GET /_sim/events/stream`` (the journal, live), compiled from the paths of ``openapi.yaml`` marked
``x-surface: ui``.

The page adds no backend of its own: its script calls the control plane (``/_sim/...``) and native QStash
(``/v2/...``). With a control token every call needs it, as on the control plane; a browser cannot send a
header when it opens a page, so ``?token=`` is accepted here too, and a right one is kept in an HttpOnly
cookie (path ``/_sim``) that the page's files, its reloads and its event stream carry.
"""

from __future__ import annotations

import hmac
import html
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from importlib import resources
from typing import Any

from qstash_sim.api.ui.stream import JournalStream, StreamSlots
from qstash_sim.contract.router import Contract
from qstash_sim.domain.commands import Caller
from qstash_sim.errors import ApiError, Unauthorized
from qstash_sim.http.surface import Ctx, InboundRequest, Reply, Surface, no_caller

__all__ = ["ASSETS", "COOKIE", "MOUNT", "ui_surface"]

MOUNT = ("/_sim/ui", "/_sim/events/")
COOKIE = "qstash_sim_token"
TOKEN_HEADER = "X-Qstash-Sim-Token"
_MODULES = (
    "app.js",
    "dom.js",
    "data.js",
    "timeline.js",
    "why.js",
    "inspector.js",
    "views.js",
    "workflows.js",
)  # ES modules
ASSETS = {  # file -> content type (the enum of /_sim/ui/{asset})
    **dict.fromkeys(_MODULES, "text/javascript; charset=utf-8"),
    "app.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
# Only the simulator's own origin: no CDN, no outside request, no inline script.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def _static(name: str) -> bytes:
    return (resources.files("qstash_sim.api.ui") / "static" / name).read_bytes()


def _given_token(request: InboundRequest) -> tuple[str, bool]:
    """The token the request carries, and whether it came in the query (then the answer sets the cookie)."""
    given = str(request.headers.get(TOKEN_HEADER) or "")
    auth = str(request.headers.get("Authorization", ""))
    if not given and auth[:7].lower() == "bearer ":
        given = auth[7:].strip()
    if not given:
        cookie = SimpleCookie()
        try:
            cookie.load(str(request.headers.get("Cookie", "")))
        except CookieError:
            pass
        if COOKIE in cookie:
            given = cookie[COOKIE].value
    if not given and request.query.get("token"):
        return str(request.query.get("token")), True
    return given, False


def ui_surface(spec: Mapping[str, Any], *, token: str | None = None) -> Surface:
    """The dashboard's surface; ``token``: the control token (``None``: open, like the control plane)."""
    files = {name: _static(name) for name in ASSETS}
    page = _static("index.html").decode()
    slots = StreamSlots()

    def authenticate(request: InboundRequest, sim: Any) -> Caller:
        if token is not None:
            given, _ = _given_token(request)
            if not hmac.compare_digest(given.encode(), token.encode()):
                raise Unauthorized(
                    "the dashboard needs the control token: open /_sim/ui?token=<token> "
                    f"(or send Authorization: Bearer <token> or {TOKEN_HEADER})"
                )
        return no_caller(request)

    async def ui_page(ctx: Ctx) -> Reply:
        headers = {"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": _CSP, **_NO_STORE}
        meta = ""
        if token is not None:
            meta = f'<meta name="qstash-sim-token" content="{html.escape(token, quote=True)}">'
            if _given_token(ctx.request)[1]:
                headers["Set-Cookie"] = f"{COOKIE}={token}; Path=/_sim; HttpOnly; SameSite=Strict"
        return Reply(page.replace("<!--token-->", meta).encode(), headers=headers)

    async def ui_asset(ctx: Ctx) -> Reply:
        name = ctx.params["asset"]
        return Reply(files[name], headers={"Content-Type": ASSETS[name], **_NO_STORE})

    async def events_stream(ctx: Ctx) -> Reply:
        since, reads = int(ctx.query.get("since") or 0), bool(ctx.query.get("reads"))
        live = "text/event-stream" in str(ctx.headers.get("Accept", "")).lower()
        if live and not slots.take():
            raise ApiError(f"too many event streams open (at most {slots.cap}); close one first", status=429)
        stream = JournalStream(ctx.sim, slots if live else None, since=since, reads=reads, live=live)
        headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return Reply(b"", headers=headers, stream=stream)

    paths = {p: item for p, item in spec["paths"].items() if item.get("x-surface") == "ui"}
    return Surface(
        "ui",
        mount=MOUNT,
        contract=Contract.from_spec({**spec, "paths": paths}, check=False),
        handlers={"simUi": ui_page, "simUiAsset": ui_asset, "simEventsStream": events_stream},
        authenticate=authenticate,
        accounts=False,
        description="the dashboard (open /_sim/ui in a browser)",
    )
