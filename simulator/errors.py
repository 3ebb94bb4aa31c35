"""The simulator's one error tree.

::

    SimulatorError
    ├── ApiError                 an answer for an API caller: carries the HTTP status and the message
    │   ├── BadRequest           400
    │   ├── Unauthorized         401
    │   ├── PaymentRequired      402 (carries the x402 body/headers)
    │   ├── NotFound             404
    │   ├── MethodNotAllowed     405 (carries the allowed methods)
    │   ├── Conflict             409 (the object's state does not allow it)
    │   ├── PayloadTooLarge      413
    │   └── TooManyRequests      429 (carries the rate-limit headers)
    ├── ConfigError              a bad option, scenario file or spec, found before serving
    └── ContractError            openapi.yaml and the handlers disagree (a start-up error)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class SimulatorError(Exception):
    """Base of every error the simulator raises on purpose."""


class ApiError(SimulatorError):
    """An error answered to an API caller as ``{"error": message}`` with ``status``."""

    status = 500

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.headers: dict[str, str] = dict(headers or {})
        # A body other than the QStash error body (e.g. an x402 object); None means {"error": message}.
        self.body = body


class BadRequest(ApiError):
    """400: the request is malformed; the message names the field and what was expected."""

    status = 400


class Unauthorized(ApiError):
    """401: missing or unknown credentials."""

    status = 401


class PaymentRequired(ApiError):
    """402: payment required (x402)."""

    status = 402


class NotFound(ApiError):
    """404: unknown path or object."""

    status = 404


class Conflict(ApiError):
    """409: the request does not fit the object's current state (e.g. reauthorizing a denied transaction)."""

    status = 409


class MethodNotAllowed(ApiError):
    """405: the path exists but not with this method."""

    status = 405

    def __init__(self, message: str, *, allowed: list[str]) -> None:
        super().__init__(message, headers={"Allow": ", ".join(allowed)})
        self.allowed = allowed


class PayloadTooLarge(ApiError):
    """413: the body is over the configured limit."""

    status = 413


class TooManyRequests(ApiError):
    """429: rate limited."""

    status = 429


class ConfigError(SimulatorError):
    """A bad option or file, reported before anything is served."""


class ContractError(SimulatorError):
    """openapi.yaml and the code disagree; raised at start-up."""


class UnsupportedAiohttpVersion(RuntimeError):
    """The installed aiohttp is not one whose internals ``qstash_sim.http.protocol`` was verified against."""
