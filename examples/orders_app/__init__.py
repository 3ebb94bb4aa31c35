"""A tiny downstream app: what the messaging page's ``processOrder`` does, in Python, with the stdlib only.

``dispatch_order`` publishes to fulfillment, enqueues a confirmation email on ``email-queue``, and
batches to analytics and inventory, through Sapiom's QStash gateway (``base_url`` is the gateway base,
``.../v1/qstash``). A 429 is retried after its ``Retry-After``; a 402 is raised as
:class:`PaymentRequiredError` (this app holds no wallet to pay with).

``sleep`` is injectable so that tests can wait on a virtual clock instead of the wall clock.
"""

from __future__ import annotations

import email.utils
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["DispatchError", "PaymentRequiredError", "dispatch_order", "schedule_daily_report"]

DEFAULT_DEST = "https://api.example.com"
# No proxies: the gateway in tests is on loopback, and an environment proxy must never see it.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class DispatchError(RuntimeError):
    """The gateway refused a call (status and body kept for the caller)."""

    def __init__(self, status: int, body: bytes, url: str) -> None:
        super().__init__(f"{url} answered {status}: {body[:200]!r}")
        self.status = status
        self.body = body
        self.url = url


class PaymentRequiredError(DispatchError):
    """402: the gateway wants a payment this app cannot make."""


def _retry_after_s(value: str | None) -> float:
    """``"1"`` -> 1.0; an HTTP date -> seconds from now (at least 0); missing -> 1.0."""
    if not value:
        return 1.0
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _call(
    method: str,
    url: str,
    api_key: str,
    body: Any,
    headers: Mapping[str, str],
    *,
    max_attempts: int,
    sleep: Callable[[float], object],
    timeout: float,
) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    hdrs = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json", **headers}
    for attempt in range(1, max_attempts + 1):
        req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
        try:
            with _OPENER.open(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            payload = err.read()
            err.close()
            if err.code == 429 and attempt < max_attempts:
                sleep(_retry_after_s(err.headers.get("Retry-After")))
                continue
            if err.code == 402:
                raise PaymentRequiredError(err.code, payload, url) from None
            raise DispatchError(err.code, payload, url) from None
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def dispatch_order(
    order_id: str,
    base_url: str,
    api_key: str,
    *,
    dest_base: str = DEFAULT_DEST,
    max_attempts: int = 5,
    sleep: Callable[[float], object] = time.sleep,
    timeout: float = 10.0,
) -> dict[str, str]:
    """Dispatch ``order_id``; returns the message ids ``{"fulfillment", "email", "analytics", "inventory"}``."""
    base = base_url.rstrip("/")
    dest = dest_base.rstrip("/")
    kw: dict[str, Any] = {"max_attempts": max_attempts, "sleep": sleep, "timeout": timeout}
    # Fire-and-forget: notify the fulfillment service.
    shipped = _call(
        "POST", f"{base}/publish/{dest}/fulfillment", api_key, {"orderId": order_id, "action": "ship"}, {}, **kw
    )
    # Ordered queue: confirmation emails go out one at a time.
    emailed = _call(
        "POST",
        f"{base}/enqueue/email-queue/{dest}/send-email",
        api_key,
        {"orderId": order_id, "template": "order-confirmation"},
        {},
        **kw,
    )
    # Batch: notify several services at once.
    batch = [
        {
            "destination": f"{dest}/analytics",
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"event": "order.completed", "orderId": order_id}),
        },
        {
            "destination": f"{dest}/inventory",
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"action": "decrement", "orderId": order_id}),
        },
    ]
    analytics, inventory = _call("POST", f"{base}/batch", api_key, batch, {}, **kw)
    return {
        "fulfillment": shipped["messageId"],
        "email": emailed["messageId"],
        "analytics": analytics["messageId"],
        "inventory": inventory["messageId"],
    }


def schedule_daily_report(
    base_url: str, api_key: str, *, cron: str = "0 9 * * *", dest_base: str = DEFAULT_DEST, timeout: float = 10.0
) -> str:
    """Create the daily sales-report schedule; returns its schedule id."""
    answer = _call(
        "POST",
        f"{base_url.rstrip('/')}/schedules/{dest_base.rstrip('/')}/daily-report",
        api_key,
        {"report": "daily-sales"},
        {"Upstash-Cron": cron},
        max_attempts=1,
        sleep=time.sleep,
        timeout=timeout,
    )
    return str(answer["scheduleId"])
