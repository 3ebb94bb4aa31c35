"""Who is calling the Sapiom surface: ``x-api-key`` (what ``@sapiom/fetch`` sends), else
``Authorization: Bearer``, else the shared ``default`` account. The key *is* the account name.

The gateway's caller may then be refined from ``X-Sapiom-Transaction-Id`` (:mod:`.paywall`).
"""

from __future__ import annotations

from collections.abc import Mapping

from qstash_sim.core.service import SimulatorCore
from qstash_sim.domain.commands import Caller
from qstash_sim.http.surface import InboundRequest

__all__ = ["api_key", "authenticate"]


def api_key(headers: Mapping[str, str]) -> str:
    """The key of a request: ``x-api-key``, else ``Authorization: Bearer <key>``; ``""`` if neither."""
    key = (headers.get("x-api-key") or "").strip()
    if key:
        return key
    auth = str(headers.get("Authorization", ""))
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return ""


def authenticate(request: InboundRequest, sim: SimulatorCore) -> Caller:
    """The caller's account from its key; without one, the simulator's ``anonymous_account`` (``default``)."""
    return Caller(account=api_key(request.headers) or sim.anonymous_account, caller_ip=request.remote or "127.0.0.1")
