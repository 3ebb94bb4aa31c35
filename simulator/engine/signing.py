"""``Upstash-Signature``: the HS256 JWT QStash puts on every request it sends (pure stdlib).

Header ``{"alg":"HS256","typ":"JWT"}``; claims ``iss="Upstash"``, ``sub`` = the exact URL called,
``iat`` = now (s), ``nbf`` = 0, ``exp`` = now + 300, ``jti``, ``body`` = base64url(SHA-256(body)) with ``=``
padding. The HMAC key is the signing key string's UTF-8 bytes (the whole ``sig_...`` string).

``nbf`` is 0, as QStash has signed since 2024-09: a receiver whose clock runs behind the signer's still
accepts the token (only ``exp`` bounds it). Both official Receivers require the claim, and 0 satisfies them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from qstash_sim.domain.account import SigningKeys

__all__ = ["NOT_BEFORE", "TOKEN_LIFETIME_S", "Verification", "body_hash", "rotate", "sign", "verify"]

TOKEN_LIFETIME_S = 300
NOT_BEFORE = 0  # the ``nbf`` claim QStash signs (since 2024-09): valid from the epoch on
_HEADER_B64 = base64.urlsafe_b64encode(
    json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode()
).rstrip(b"=")


_json_str = json.encoder.encode_basestring_ascii  # json.dumps's own (C) escaper


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


_HASHES: dict[bytes, str] = {}  # small bodies' hashes (retries and schedules sign the same body again)
_HASHES_MAX, _HASHED_BODY_MAX = 1024, 4096


def body_hash(body: bytes) -> str:
    """``body_hash(b"")`` -> ``"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="`` (padding kept)."""
    small = len(body) <= _HASHED_BODY_MAX
    if small and (hit := _HASHES.get(body)) is not None:
        return hit
    digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).decode()
    if small:
        if len(_HASHES) >= _HASHES_MAX:
            _HASHES.clear()
        _HASHES[body] = digest
    return digest


def sign(keys_current: str, url: str, body: bytes, now_ms: int, jti: str) -> str:
    """The ``Upstash-Signature`` JWT for a request to ``url`` carrying ``body``, signed at ``now_ms``.

    ``sign("sig_...", "https://example.com/api", b"{}", 1767225600000, "jwt_abc")`` -> ``"eyJhbGciOi..."``
    """
    now_s = now_ms // 1000
    # Byte for byte what json.dumps(claims, separators=(",", ":")) gives, built directly (signing is on
    # every attempt's path): the strings are JSON-escaped as json.dumps escapes them (ASCII only).
    claims = (
        f'{{"iss":"Upstash","sub":{_json_str(url)},"exp":{now_s + TOKEN_LIFETIME_S},"nbf":{NOT_BEFORE},'
        f'"iat":{now_s},"jti":{_json_str(jti)},"body":"{body_hash(body)}"}}'
    )
    signing_input = _HEADER_B64 + b"." + _b64url(claims.encode("ascii"))
    mac = hmac.digest(keys_current.encode("utf-8"), signing_input, "sha256")
    return (signing_input + b"." + _b64url(mac)).decode("ascii")


def rotate(keys: SigningKeys, new_next: str) -> SigningKeys:
    """Roll keys in place: the old ``next`` becomes ``current``, ``new_next`` becomes ``next``.

    Returns ``keys`` (the same object) so callers can answer ``{"current", "next"}`` at once.
    """
    keys.current, keys.next = keys.next, new_next
    return keys


@dataclass(frozen=True, slots=True)
class Verification:
    """What checking an ``Upstash-Signature`` found: ``ok``, and when not, ``reason`` (one line)."""

    ok: bool
    reason: str = ""
    claims: dict[str, Any] | None = None
    key: str | None = None  # "current" or "next": which key verified it

    def __bool__(self) -> bool:
        return self.ok


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify(
    token: str | None, keys: SigningKeys, url: str, body: bytes, now_s: float, *, leeway_s: int = 0
) -> Verification:
    """Check ``token`` the way the official Receivers do (current key, then next), and say why not.

    ``verify(sign(k.current, "https://a/x", b"{}", t, "jwt_1"), k, "https://a/x", b"{}", t / 1000)`` ->
    ``Verification(ok=True, key="current", ...)``; for another URL the reason reads ``signed for
    https://a/x, received at https://a/y``.
    """
    if not token:
        return Verification(False, "no Upstash-Signature header")
    parts = token.split(".")
    if len(parts) != 3:
        return Verification(False, "Upstash-Signature is not a JWT (three dot-separated parts)")
    try:
        header = json.loads(_b64decode(parts[0]))
        claims = json.loads(_b64decode(parts[1]))
    except (ValueError, UnicodeDecodeError):
        return Verification(False, "Upstash-Signature is not a JWT (its parts are not base64url JSON)")
    if not isinstance(claims, dict) or not isinstance(header, dict) or header.get("alg") != "HS256":
        return Verification(False, "Upstash-Signature is not an HS256 JWT", None)
    signing_input = f"{parts[0]}.{parts[1]}".encode()
    which = None
    for name, key in (("current", keys.current), ("next", keys.next)):
        mac = _b64url(hmac.new(key.encode("utf-8"), signing_input, hashlib.sha256).digest()).decode()
        if hmac.compare_digest(mac, parts[2]):
            which = name
            break
    if which is None:
        return Verification(False, "signed with another key (not these current or next signing keys)", claims)
    if claims.get("iss") != "Upstash":
        return Verification(False, f"issuer is {claims.get('iss')!r}, not 'Upstash'", claims, which)
    if claims.get("sub") != url:
        return Verification(False, f"signed for {claims.get('sub')}, received at {url}", claims, which)
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int) or now_s > exp + leeway_s:
        return Verification(
            False, f"expired at {exp} (now {int(now_s)}; signatures live {TOKEN_LIFETIME_S} s)", claims, which
        )
    if not isinstance(nbf, int) or now_s + leeway_s < nbf:
        return Verification(False, f"not valid before {nbf} (now {int(now_s)})", claims, which)
    want = body_hash(body).rstrip("=")
    if str(claims.get("body", "")).rstrip("=") != want:
        return Verification(
            False, "the body's SHA-256 does not match the signature's body claim (was it changed?)", claims, which
        )
    return Verification(True, "", claims, which)
