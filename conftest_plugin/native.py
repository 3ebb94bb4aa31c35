"""The native QStash side of the fixtures: the base URL, the environment an app reads, and ready clients of
the official Python SDK (``qstash`` on PyPI) pointed at the simulator.

The SDK is optional: it is imported when ``qstash_client()`` or ``receiver()`` is called, and its absence is
one clear error naming the package. The token is the test's ``api_key``, so
calls through a client and through the Sapiom gateway land in one account, whose signing keys sign every
delivery of either surface.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from qstash_sim.domain.account import SigningKeys

if TYPE_CHECKING:
    from qstash import AsyncQStash, QStash
    from qstash import Receiver as QstashReceiver

    from .handle import _Core

__all__ = ["AsyncClient", "NativeQstash", "SyncClient", "import_qstash"]

SDK_HINT = "pip install qstash (qstash-sim is tested with qstash==3.4.0)"


def import_qstash(what: str) -> Any:
    """The ``qstash`` module, or an ``ImportError`` saying that ``what`` needs it and how to install it."""
    try:
        return import_module("qstash")
    except ImportError as exc:
        raise ImportError(
            f"qstash_sim.{what} needs the official QStash Python SDK, which is not installed: {SDK_HINT}"
        ) from exc


class NativeQstash:
    """What both handles offer for native QStash (``/v2``): URL, token, environment, ``qstash.Receiver``."""

    _core: _Core

    @property
    def qstash_url(self) -> str:
        """The native QStash base URL, for ``QSTASH_URL`` or ``base_url=``: ``http://127.0.0.1:PORT`` (the SDKs
        add ``/v2/...`` themselves)."""
        return self._core.server.origin

    @property
    def qstash_token(self) -> str:
        """The token to send as ``Authorization: Bearer``: the test's ``api_key``, which names its account."""
        return self._core.config.api_key

    def _keys(self, account: str | None) -> SigningKeys:
        name = self.qstash_token if account is None else account
        keys = self._core.on_loop(lambda: self._core.sim.account(name).signing_keys)
        return SigningKeys(keys.current, keys.next)

    def env(self) -> dict[str, str]:
        """The environment variables an application reads to talk to this simulator::

            {"SAPIOM_BASE_URL": origin, "QSTASH_URL": origin, "QSTASH_TOKEN": api_key,
             "QSTASH_CURRENT_SIGNING_KEY": ..., "QSTASH_NEXT_SIGNING_KEY": ...}

        (the keys are the ``api_key`` account's, the account of calls with that token or with none; read now:
        after a key rotation, call it again).
        """
        keys = self._keys(None)
        origin = self._core.server.origin
        return {
            "SAPIOM_BASE_URL": origin,
            "QSTASH_URL": origin,
            "QSTASH_TOKEN": self.qstash_token,
            "QSTASH_CURRENT_SIGNING_KEY": keys.current,
            "QSTASH_NEXT_SIGNING_KEY": keys.next,
        }

    def setenv(self, monkeypatch: Any) -> dict[str, str]:
        """Set :meth:`env` for this test with pytest's ``monkeypatch`` (undone after the test); returns it."""
        values = self.env()
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        return values

    def receiver(self, account: str | None = None) -> QstashReceiver:
        """A ``qstash.Receiver`` holding the signing keys of this test's account (or ``account``'s), as they are
        now: ``receiver().verify(signature=..., body=..., url=...)`` checks a delivery as the app would."""
        sdk = import_qstash("receiver()")
        keys = self._keys(account)
        receiver: QstashReceiver = sdk.Receiver(current_signing_key=keys.current, next_signing_key=keys.next)
        return receiver


def _one_request_per_connection(client: Any) -> None:
    """Swap the SDK's httpx client for one that keeps no idle connection: the SDK has no ``close()``, and a
    pooled keep-alive socket left to the garbage collector is a ``ResourceWarning`` in the next test (an error
    under ``-W error``). Loopback connections cost next to nothing."""
    import httpx

    http = getattr(client, "http", None)
    old = getattr(http, "_client", None)
    limits = httpx.Limits(max_keepalive_connections=0)
    if isinstance(old, httpx.Client):
        http._client = httpx.Client(timeout=old.timeout, limits=limits)  # type: ignore[union-attr]
        old.close()
    elif isinstance(old, httpx.AsyncClient):  # never used yet: it holds no socket
        http._client = httpx.AsyncClient(timeout=old.timeout, limits=limits)  # type: ignore[union-attr]


class SyncClient(NativeQstash):
    """The sync fixture's client: a ``qstash.QStash``."""

    def qstash_client(self, *, token: str | None = None, retry: Any = False) -> QStash:
        """A ``qstash.QStash`` on this simulator, with this test's token (or ``token``: another account).

        ``retry=False`` by default (the SDK retries connection errors 5 times, about 12 s, which only hides a
        failure in a test); pass the SDK's ``retry`` value (``None`` for its default) to change it.
        """
        sdk = import_qstash("qstash_client()")
        client: QStash = sdk.QStash(token or self.qstash_token, base_url=self.qstash_url, retry=retry)
        _one_request_per_connection(client)
        return client


class AsyncClient(NativeQstash):
    """The async fixture's client: a ``qstash.AsyncQStash``."""

    def qstash_client(self, *, token: str | None = None, retry: Any = False) -> AsyncQStash:
        """A ``qstash.AsyncQStash`` on this simulator (``await client.message.publish_json(...)``), with this
        test's token (or ``token``); ``retry=False`` by default, as for the sync fixture."""
        sdk = import_qstash("qstash_client()")
        client: AsyncQStash = sdk.AsyncQStash(token or self.qstash_token, base_url=self.qstash_url, retry=retry)
        _one_request_per_connection(client)
        return client
