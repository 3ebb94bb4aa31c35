"""Who is calling the native QStash surface: ``Authorization: Bearer <token>``, else ``?qstash_token=``.

The token names the account through ``sim.tokens``, the one token -> account map every surface shares:
with no token configured any non-empty token is an account of that name; once tokens are configured
(``--token``, ``qstash-sim dev``), an unknown token is refused. Either way a missing or refused token is
401 with QStash's error body.
"""

from __future__ import annotations

from qstash_sim.core.service import SimulatorCore
from qstash_sim.domain.commands import Caller
from qstash_sim.errors import Unauthorized
from qstash_sim.http.surface import InboundRequest

__all__ = ["authenticate", "token_of"]


def token_of(request: InboundRequest) -> str:
    """The request's token: ``Authorization: Bearer <token>`` (it wins), else ``?qstash_token=``; ``""``."""
    auth = str(request.headers.get("Authorization", ""))
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    return str(request.query.get("qstash_token") or "").strip()


def authenticate(request: InboundRequest, sim: SimulatorCore) -> Caller:
    """The caller's account from its token, or 401 (a workflow webhook, called by anyone, needs none)."""
    if request.raw_path.startswith("/v2/workflows/hooks/"):  # the run it names is the account's (workflow_wait.py)
        return Caller(account=sim.anonymous_account, caller_ip=request.remote or "127.0.0.1")
    token = token_of(request)
    if not token:
        raise Unauthorized("missing token: send Authorization: Bearer <QSTASH_TOKEN> (or ?qstash_token=<QSTASH_TOKEN>)")
    account = sim.tokens.account_for(token)
    if account is None:
        raise Unauthorized("invalid token: not one of the tokens this simulator accepts (--token)")
    return Caller(account=account, caller_ip=request.remote or "127.0.0.1")
