"""Which account a credential names, for every surface: a token -> account map, empty by default.

Empty (the default of ``qstash-sim serve``): any non-empty token names an account of the same name, so a
test can invent credentials and get an account each. Once a token is configured (``--token TOKEN[=ACCOUNT]``,
``qstash-sim dev``'s users), only configured tokens are accepted and an unknown one is refused (401).
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["Tokens", "parse_token_option"]

MAX_TOKEN_LENGTH = 1024


class Tokens:
    """``token -> account``. ``account_for(token)`` is ``None`` when the token is refused."""

    def __init__(self) -> None:
        self._accounts: dict[str, str] = {}

    @property
    def configured(self) -> bool:
        """Whether tokens were configured (then unknown ones are refused)."""
        return bool(self._accounts)

    def add(self, token: str, account: str | None = None) -> None:
        """Accept ``token`` as ``account`` (default: an account named like the token)."""
        token = token.strip()
        if not token:
            raise ValueError("a token must not be empty")
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError(f"a token is at most {MAX_TOKEN_LENGTH} characters, got {len(token)}")
        self._accounts[token] = (account or "").strip() or token

    def clear(self) -> None:
        """Forget every configured token (any token names its own account again)."""
        self._accounts.clear()

    def account_for(self, token: str) -> str | None:
        """The account ``token`` names: the configured one, else (nothing configured) the token itself;
        ``None`` for an empty token, and for an unknown one once tokens are configured."""
        token = token.strip()
        if not token:
            return None
        if not self._accounts:
            return token
        return self._accounts.get(token)

    def items(self) -> Iterator[tuple[str, str]]:
        """``(token, account)`` pairs, in the order added."""
        return iter(list(self._accounts.items()))


def parse_token_option(text: str) -> tuple[str, str | None]:
    """``"tok_1=alice"`` -> ``("tok_1", "alice")``; ``"tok_1"`` -> ``("tok_1", None)``.

    Split at the *last* ``=``, so a base64 token keeps its padding: ``"ZGV2=="`` is a token alone and
    ``"ZGV2===alice"`` is ``("ZGV2==", "alice")``.
    """
    token, sep, account = text.rpartition("=")
    if not sep or not account.strip() or not token.strip():
        return text.strip(), None
    return token.strip(), account.strip()
