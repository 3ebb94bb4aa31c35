"""The authorization policy: how a new transaction's status evolves (pending for N polls, denied, budgets)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from qstash_sim.errors import ConfigError
from qstash_sim.sapiom.records import TransactionStatus

_STEP_STATUSES = {s.value: s for s in TransactionStatus if s is not TransactionStatus.COMPLETED}


_FINAL_STATUSES = {
    s.value: s for s in (TransactionStatus.AUTHORIZED, TransactionStatus.DENIED, TransactionStatus.CANCELLED)
}


@dataclass(frozen=True, slots=True)
class PolicyStep:
    """What the Sapiom API answers at one phase (create or reauthorize).

    ``PolicyStep()`` authorizes at once; ``PolicyStep(TransactionStatus.PENDING, polls=2)`` answers
    ``pending`` and then two more GETs with ``pending`` before the third says ``authorized`` (each
    pending GET costs a real SDK client about one second); ``then`` may also be denied/cancelled.
    """

    status: TransactionStatus = TransactionStatus.AUTHORIZED
    polls: int = 0  # pending/preparing only: how many GETs still answer that status
    then: TransactionStatus = TransactionStatus.AUTHORIZED  # pending/preparing only: where it settles

    def __post_init__(self) -> None:
        if self.status is TransactionStatus.COMPLETED:
            raise ConfigError("a policy step cannot answer 'completed' (the SDK treats it as an error)")
        if self.then.value not in _FINAL_STATUSES:
            raise ConfigError(f"'then' must be one of {', '.join(_FINAL_STATUSES)}, got {self.then.value!r}")
        if self.polls < 0:
            raise ConfigError(f"'polls' must be >= 0, got {self.polls}")

    @classmethod
    def parse(cls, value: Any, where: str) -> PolicyStep:
        """A step from config.

        ``"denied"`` -> ``PolicyStep(DENIED)``; ``{"pending": 2}`` -> ``PolicyStep(PENDING, polls=2)``;
        ``{"status": "pending", "polls": 1, "then": "denied"}`` -> pending for one GET, then denied.
        ``ConfigError`` names ``where`` (e.g. ``authorization.create``) and the accepted forms.
        """
        if isinstance(value, PolicyStep):
            return value
        if isinstance(value, str):
            return cls(_status(value, where, _STEP_STATUSES))
        if isinstance(value, Mapping):
            data = dict(value)
            for short in ("pending", "preparing"):
                if short in data:
                    polls = data.pop(short)
                    data = {"status": short, "polls": polls, **data}
            unknown = set(data) - {"status", "polls", "then"}
            if unknown:
                raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; expected status, polls, then")
            polls = data.get("polls", 0)
            if isinstance(polls, float) and polls.is_integer():  # JSON Schema counts 2.0 as the integer 2
                polls = int(polls)
            if not isinstance(polls, int) or isinstance(polls, bool) or polls < 0:
                raise ConfigError(f"{where}.polls must be an integer >= 0, got {polls!r}")
            return cls(
                _status(data.get("status", "authorized"), f"{where}.status", _STEP_STATUSES),
                polls,
                _status(data.get("then", "authorized"), f"{where}.then", _FINAL_STATUSES),
            )
        raise ConfigError(
            f'{where} must be a status ("authorized", "denied", ...) or a mapping such as {{"pending": 2}}, '
            f"got {value!r}"
        )


def _status(value: Any, where: str, allowed: Mapping[str, TransactionStatus]) -> TransactionStatus:
    if isinstance(value, TransactionStatus) and value.value in allowed:
        return value
    if isinstance(value, str) and value in allowed:
        return allowed[value]
    raise ConfigError(f"{where} must be one of {', '.join(allowed)}, got {value!r}")


def _budgets(value: Any, where: str) -> dict[str, Decimal]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f'{where} must be a mapping of name -> dollars, e.g. {{"my-agent": "0.01"}}')
    out: dict[str, Decimal] = {}
    for name, dollars in value.items():
        try:
            amount = Decimal(str(dollars)) if not isinstance(dollars, bool) else None
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite() or amount < 0:
            raise ConfigError(f'{where}.{name} must be a dollar amount >= 0 such as "0.01", got {dollars!r}')
        out[str(name)] = amount
    return out


@dataclass(frozen=True, slots=True)
class AuthorizationPolicy:
    """How the simulated Sapiom API decides transaction statuses (default: authorize everything).

    Budgets are in dollars, measured against the ledger (what the account/agent was charged): a create
    is denied once the spend has reached the budget, a reauthorize when its payment would exceed it.
    """

    create: PolicyStep = field(default_factory=PolicyStep)
    reauthorize: PolicyStep = field(default_factory=PolicyStep)
    agent_budgets: Mapping[str, Decimal] = field(default_factory=dict)  # agentName (or agentId) -> dollars
    account_budgets: Mapping[str, Decimal] = field(default_factory=dict)  # account -> dollars

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "authorization") -> AuthorizationPolicy:
        """Parse the ``authorization:`` block of a scenario or fixture option.

        ``{"create": {"pending": 2}, "reauthorize": "denied", "budgets": {"agents": {"my-agent": "0.00002"}}}``
        -> create answers pending for 2 GETs then authorized; every reauthorize is denied; ``my-agent``
        is denied new transactions once charged $0.00002. ``ConfigError`` names the bad key.
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be a mapping with create, reauthorize and/or budgets")
        unknown = set(data) - {"create", "reauthorize", "budgets"}
        if unknown:
            keys = ", ".join(sorted(unknown))
            raise ConfigError(f"{where}: unknown key(s) {keys}; expected create, reauthorize, budgets")
        budgets = data.get("budgets")
        budgets = {} if budgets is None else budgets  # null means none; false, 0, "" are mistakes
        if not isinstance(budgets, Mapping) or set(budgets) - {"agents", "accounts"}:
            raise ConfigError(f"{where}.budgets must be a mapping with 'agents' and/or 'accounts'")
        return cls(
            create=PolicyStep.parse(data.get("create", "authorized"), f"{where}.create"),
            reauthorize=PolicyStep.parse(data.get("reauthorize", "authorized"), f"{where}.reauthorize"),
            agent_budgets=_budgets(budgets.get("agents"), f"{where}.budgets.agents"),
            account_budgets=_budgets(budgets.get("accounts"), f"{where}.budgets.accounts"),
        )

    def budget_denial(
        self,
        account: str,
        agent: str | None,
        spent: Callable[[str, str | None], Decimal],
        extra: Decimal | None = None,
    ) -> str | None:
        """Why a budget denies this create (``extra`` None) or this payment of ``extra`` dollars; None if it fits.

        ``spent(account, agent)`` is what was charged so far (agent None: the whole account).
        """
        checks: list[tuple[str, Decimal, Decimal]] = []
        if agent is not None and agent in self.agent_budgets:
            checks.append((f"agent {agent!r}", self.agent_budgets[agent], spent(account, agent)))
        if account in self.account_budgets:
            checks.append((f"account {account!r}", self.account_budgets[account], spent(account, None)))
        for who, budget, used in checks:
            over = used >= budget if extra is None else used + extra > budget
            if over:
                what = "" if extra is None else f" (+${extra} for this payment)"
                return f"budget: {who} spent ${used}{what} of its ${budget} budget"
        return None
