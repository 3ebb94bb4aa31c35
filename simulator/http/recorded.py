"""The headers of a request as the journal keeps them (``detail.headers`` of a request that created
messages): what the dashboard's inspector compares with what each attempt sent.

The caller's own credentials are kept by name only (``(redacted)``): the journal is readable by anyone
with the control plane, and those values authenticate to the simulator (or to Sapiom), not to a destination.
Transport headers (``Host``, ``Content-Length``, ``Connection``, ...) are left out: they are never
forwarded, and ``Host`` names the simulator's port, which would make the same requests with the same seed
journal differently from one server to the next.
"""

from __future__ import annotations

from typing import Any

__all__ = ["REDACTED", "recorded_headers"]

REDACTED = "(redacted)"
_SECRET = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-api-key",
        "x-payment",
        "payment-signature",
        "x-qstash-sim-token",
    }
)


_TRANSPORT = frozenset(
    {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection"}
)


def recorded_headers(headers: Any) -> dict[str, str]:
    """``{"Authorization": "Bearer x", "Upstash-Delay": "1m"}`` -> ``{"Authorization": "(redacted)",
    "Upstash-Delay": "1m"}``; a repeated header's values joined with ``", "``; transport headers left out."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        low = name.lower()
        if low in _TRANSPORT:
            continue
        shown = REDACTED if low in _SECRET else str(value)
        out[name] = f"{out[name]}, {shown}" if name in out else shown
    return out
