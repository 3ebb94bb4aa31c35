"""Browser fixtures and helpers: Debian's chromium (``/usr/bin/chromium``) driven by Playwright for Python.

The test modules import them (a nested ``conftest.py`` would shadow ``tests/conftest.py``, which the
tests import as ``conftest``).

Never ``playwright install`` (it downloads a browser): the tests launch the system chromium with
``executable_path`` and a fresh user-data dir, and skip, saying why, when it or playwright is missing
(``.ci/run`` installs both, so CI runs them). Screenshots go to ``$QSTASH_SIM_UI_ARTIFACTS`` (default: a
``ui-artifacts`` folder under pytest's temporary directory).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest


def publish(served: Any, url: str, **kw: Any) -> str:
    """Publish through ``POST /v2/publish/{url}`` on the served simulator; the message id."""
    return publish_to(served.server.port, url, **kw)


def publish_to(
    port: int,
    url: str,
    *,
    retries: int = 2,
    account: str = "alice",
    headers: dict[str, str] | None = None,
    body: bytes = b'{"hello":"world"}',
) -> str:
    """Publish through ``POST /v2/publish/{url}`` on the server at ``port``; the message id."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    hdrs = {"Authorization": f"Bearer {account}", "Content-Type": "application/json", "Upstash-Retries": str(retries)}
    hdrs.update(headers or {})
    conn.request("POST", f"/v2/publish/{url}", body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    assert resp.status in (200, 201), data
    return str(json.loads(data)["messageId"])


class Page:
    """A fresh page on the simulator's dashboard; every request off the simulator's origin is refused
    and recorded in :attr:`off_origin`."""

    def __init__(self, ctx: Any, base: str) -> None:
        self.base = base
        origin = urlsplit(base)
        self.off_origin: list[str] = []
        self.errors: list[str] = []
        self.page = ctx.new_page()

        def gate(route: Any) -> None:
            url = urlsplit(route.request.url)
            if (url.scheme, url.netloc) == (origin.scheme, origin.netloc) or url.scheme == "data":
                route.continue_()
            else:
                self.off_origin.append(route.request.url)
                route.abort()

        self.page.route("**/*", gate)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def open(self, query: str = "") -> Any:
        self.page.goto(f"{self.base}/_sim/ui{query}")
        self.page.wait_for_selector("body[data-complete=true]")
        return self.page

    def close(self) -> None:
        self.page.close()


CHROMIUM = os.environ.get("QSTASH_SIM_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _why_not() -> str | None:
    if not Path(CHROMIUM).is_file():
        return f"no chromium at {CHROMIUM} (apt-get install -y chromium; .ci/run does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]'; never `playwright install`)"
    return None


@pytest.fixture(scope="session", name="artifacts")
def artifacts_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots of the main views are saved."""
    given = os.environ.get("QSTASH_SIM_UI_ARTIFACTS")
    out = Path(given) if given else tmp_path_factory.getbasetemp() / "ui-artifacts"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module", name="browser_context")
def browser_context_fixture() -> Iterator[Any]:
    """A chromium context with a fresh user-data dir, for the tests of one module."""
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="qstash-sim-chromium-")
    pw = sync_playwright().start()
    try:
        ctx = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS, viewport={"width": 1400, "height": 900}
        )
        ctx.set_default_timeout(15_000)
        yield ctx
        ctx.close()
    finally:
        pw.stop()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(name="ui")
def ui_fixture(browser_context: Any, served: Any) -> Iterator[Page]:
    p = Page(browser_context, served.url)
    yield p
    p.close()
    assert not p.errors, f"the page raised: {p.errors}"
    assert not p.off_origin, f"the page asked for something off the simulator's origin: {p.off_origin}"
