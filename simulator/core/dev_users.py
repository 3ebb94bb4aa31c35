"""The official QStash development server's users (``qstash dev``): their tokens, accounts and signing keys.

``qstash dev`` knows four fixed users; the default one is what ``@upstash/qstash`` and ``@upstash/workflow``
use with ``QSTASH_DEV=true`` (token, and the keys its ``GET /v2/keys`` probe expects). A token is the base64
of ``{"UserID":"<user>","Password":"<password>"}``; qstash-sim names each user's account after its
``UserID``. Source: the QStash docs' local-development page and the ``@upstash/qstash`` 2.12.0 bundle
(``DEV_CREDENTIALS``); see docs/qstash-contract.md §7.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qstash_sim.domain.account import SigningKeys

if TYPE_CHECKING:  # the CLI reads the users to build its parser: no engine import for that
    from qstash_sim.core.service import SimulatorCore

__all__ = ["DEFAULT_DEV_USER", "DEV_USERS", "DevUser", "install_dev_users"]


@dataclass(frozen=True, slots=True)
class DevUser:
    """One user of the official dev server: the account it names, its token, its signing keys."""

    account: str
    token: str
    current_signing_key: str
    next_signing_key: str

    def keys(self) -> SigningKeys:
        """A fresh copy of the user's keys (an account's keys are rotated in place)."""
        return SigningKeys(current=self.current_signing_key, next=self.next_signing_key)


DEFAULT_DEV_USER = DevUser(
    account="defaultUser",
    token="eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0=",
    current_signing_key="sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r",
    next_signing_key="sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs",
)
DEV_USERS: tuple[DevUser, ...] = (
    DEFAULT_DEV_USER,
    DevUser(
        account="testUser1",
        token="eyJVc2VySUQiOiJ0ZXN0VXNlcjEiLCJQYXNzd29yZCI6InRlc3RQYXNzd29yZCJ9",
        current_signing_key="sig_7GVPjvuwsfqF65iC8fSrs1dfYruM",
        next_signing_key="sig_5NoELc3EFnZn4DVS5bDs2Nk4b7Ua",
    ),
    DevUser(
        account="testUser2",
        token="eyJVc2VySUQiOiJ0ZXN0VXNlcjIiLCJQYXNzd29yZCI6InRlc3RQYXNzd29yZCJ9",
        current_signing_key="sig_6jWGaWRxHsw4vMSPJprXadyvrybF",
        next_signing_key="sig_7qHbvhmahe5GwfePDiS5Lg3pi6Qx",
    ),
    DevUser(
        account="testUser3",
        token="eyJVc2VySUQiOiJ0ZXN0VXNlcjMiLCJQYXNzd29yZCI6InRlc3RQYXNzd29yZCJ9",
        current_signing_key="sig_5T8FcSsynBjn9mMLBsXhpacRovJf",
        next_signing_key="sig_7GFR4YaDshFcqsxWRZpRB161jguD",
    ),
)


def install_dev_users(core: SimulatorCore, tokens: Iterable[tuple[str, str | None]] = ()) -> None:
    """Make ``core`` answer like ``qstash dev``: the four users' tokens name their accounts, which have their
    signing keys (now and after every reset), plus ``tokens`` (``(token, account or None)``, as from
    ``--token``); any other token is refused. Calls without a token are the default user's."""
    for user in DEV_USERS:
        core.tokens.add(user.token, user.account)
        core.world.accounts.preset_keys[user.account] = user.keys()
        existing = core.world.accounts.find(user.account)
        if existing is not None:
            existing.signing_keys = user.keys()
    for token, account in tokens:
        core.tokens.add(token, account)
    core.anonymous_account = DEFAULT_DEV_USER.account
