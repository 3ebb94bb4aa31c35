"""Who is calling the Sapiom surface: ``x-api-key`` (what ``@sapiom/fetch`` sends), else
``Authorization: Bearer``, else the shared ``default`` account. The key names the account through
``sim.tokens``, the token -> account map every surface shares: with no token configured the key *is* the
account name; once tokens are configured (``--token TOKEN[=ACCOUNT]``), a key must be one of them (else
401) and names its account, as the same token does on the native QStash surface.

The gateway's caller may then be refined from ``X-Sapiom-Transaction-Id`` (:mod:`.paywall`).
"""

from __future__ import annotations

from collections.abc import Mapping

from qstash_sim.core.service import SimulatorCore
from qstash_sim.domain.commands import Caller
from qstash_sim.errors import Unauthorized
from qstash_sim.http.surface import InboundRequest

__all__ = ["account_of", "api_key", "authenticate"]


def api_key(headers: Mapping[str, str]) -> str:
    """The key of a request: ``x-api-key``, else ``Authorization: Bearer <key>``; ``""`` if neither."""
    key = (headers.get("x-api-key") or "").strip()
    if key:
        return key
    auth = str(headers.get("Authorization", ""))
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return ""


def account_of(key: str, sim: SimulatorCore) -> str:
    """The account a (non-empty) key names: itself, or once tokens are configured its token's account (401
    for a key that is not one of them)."""
    account = sim.tokens.account_for(key)
    if account is None:
        raise Unauthorized("invalid API key: not one of the tokens this simulator accepts (--token)")
    return account


def authenticate(request: InboundRequest, sim: SimulatorCore) -> Caller:
    """The caller's account from its key; without one, the simulator's ``anonymous_account`` (``default``)."""
    key = api_key(request.headers)
    account = account_of(key, sim) if key else sim.anonymous_account
    return Caller(account=account, caller_ip=request.remote or "127.0.0.1")
