"""HS256 compact JWS verification of stream tokens, cheap enough for a connect storm.

PyJWT (which still mints tokens: :func:`tidings.auth.mint`) costs ~85 µs to verify a token
never seen: its header parsed twice, a per-character alphabet check in Python, the key
re-prepared on each call. That was a quarter of the server CPU of a stream's first connect
(docs/performance.md, issue 8). :func:`claims` verifies in ~10 µs with exactly the rules of
``jwt.decode(token, secret, algorithms=["HS256"], options={"require": [...], "verify_aud":
False, "verify_iat": False})`` as :func:`tidings.auth.verify` called it (PyJWT 2.15), held to
it by a differential property test (``tests/core/test_hs256.py``, PyJWT as the oracle):

- exactly three segments ``header.payload.signature``, ASCII; each base64url, padded with at
  most two ``=`` only where that completes a 4-character group (as PyJWT, for issuers that
  pad), and canonical: re-encoding the decoded bytes gives the segment back (one token, one
  spelling);
- the header a JSON object: ``kid`` a string if present; ``crit``, if present, a non-empty
  list of strings each of which is ``"b64"`` and present in the header; ``b64: false``
  refused (no detached payloads here); ``alg`` exactly ``"HS256"``;
- the HMAC-SHA256 of ``header.payload`` under the secret's UTF-8 bytes, compared in constant
  time (an empty secret verifies nothing); computed as RFC 2104 defines it from the key's
  inner and outer SHA-256 states, made once per key (:func:`_hmac`, at most :data:`_KEYS`
  kept): ``hmac.digest`` re-derives them and, in CPython 3.11, fetches the digest from OpenSSL
  and drops the GIL on every call, which cost a cold connect storm ~10 % of its CPU;
- the payload a JSON object (the standard library's parser, as PyJWT's: what parses there
  parses here); then, in PyJWT's order: each required claim present and not ``null``;
  ``nbf``, if present, ``int()``-able and not after now; ``exp``, if present, ``int()``-able
  and after now, without leeway (:class:`Expired`); ``sub`` and ``jti`` strings if present.

Everything refused raises :class:`Invalid` (``Expired`` is one). The claims tidings adds on
top (``iat`` leeway, lifetime, tenant, user, roles…) stay in :func:`tidings.auth.verify`.
Parsed headers are kept by their segment (at most :data:`_HEADERS`: a token's header is the
same for every token of one key), so a batch of new tokens parses its header once.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import re
from typing import Any

_ALPHABET = re.compile(rb"[A-Za-z0-9_-]*")
_STANDARD = bytes.maketrans(b"-_", b"+/")  # base64url to the alphabet binascii decodes
# The last character of a canonical segment with 2 (3) characters in its last group: its low
# 4 (2) bits are unused and zero.
_CANONICAL_LAST = {2: frozenset(b"AQgw"), 3: frozenset(b"AEIMQUYcgkosw048")}
_HEADERS = 256  # parsed headers kept, by segment
_headers: dict[bytes, str | None] = {}  # header segment → its kid (None: none), valid only
_DECODER = json.JSONDecoder()  # json.loads' own, with its defaults
_KEYS = 64  # HMAC key states kept, by key: the server secret and the tenants' signing keys
_keys: dict[
    bytes, tuple[hashlib._Hash, hashlib._Hash]
] = {}  # key → its (inner, outer) SHA-256 states
_IPAD = bytes(b ^ 0x36 for b in range(256))  # RFC 2104's ipad and opad, as translate tables
_OPAD = bytes(b ^ 0x5C for b in range(256))


class Invalid(Exception):
    """The token is refused; the message says why (for logs, never for the client)."""


class Expired(Invalid):
    """The token was valid and its ``exp`` has passed."""


def _segment(segment: bytes, name: str) -> bytes:
    stripped = segment.rstrip(b"=")
    padding = len(segment) - len(stripped)
    if padding > 2 or (padding and len(segment) % 4):
        raise Invalid(f"invalid {name} padding")
    tail = len(stripped) % 4
    if tail == 1 or not _ALPHABET.fullmatch(stripped):
        raise Invalid(f"invalid {name} encoding")
    # Canonical: the bits of the last character that no byte uses are zero, i.e. encoding the
    # decoded bytes again gives the segment back (what PyJWT's round trip checked).
    if tail and stripped[-1] not in _CANONICAL_LAST[tail]:
        raise Invalid(f"{name} is not canonical base64url")
    return binascii.a2b_base64(stripped.translate(_STANDARD) + b"=" * (-tail % 4))


def _hmac(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 of ``message`` under ``key`` (RFC 2104): ``H(K ^ opad, H(K ^ ipad, m))``
    with ``K`` the key (its SHA-256 if longer than the 64-byte block) zero-padded to a block;
    the two hash states after ``K ^ ipad`` and ``K ^ opad`` are made once per key and copied
    for each message. Equal to ``hmac.digest(key, message, "sha256")`` for every key and
    message (``tests/core/test_hs256.py``)."""
    try:
        inner, outer = _keys[key]
    except KeyError:
        block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
        inner = hashlib.sha256(block.translate(_IPAD))
        outer = hashlib.sha256(block.translate(_OPAD))
        if len(_keys) >= _KEYS:
            _keys.clear()
        _keys[key] = inner, outer
    digest = inner.copy()
    digest.update(message)
    mac = outer.copy()
    mac.update(digest.digest())
    return mac.digest()


def _json_object(data: bytes, name: str) -> dict[str, Any]:
    try:
        if data[:1] == b"{" and data[1:2] != b"\x00":
            # What json.loads does with these bytes (its detect_encoding says UTF-8 for any
            # that start with "{" and a non-NUL byte), without its two Python-level calls.
            value = _DECODER.decode(data.decode("utf-8", "surrogatepass"))
        else:
            value = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise Invalid(f"invalid {name}: {error}") from None
    if not isinstance(value, dict):
        raise Invalid(f"invalid {name}: must be a JSON object")
    return value


def _split(token: str) -> tuple[bytes, bytes, bytes]:
    if not isinstance(token, str) or not token.isascii():
        raise Invalid("not an ASCII string")
    parts = token.encode("ascii").split(b".")
    if len(parts) != 3:
        raise Invalid("not three segments")
    return parts[0], parts[1], parts[2]


def _header(segment: bytes) -> str | None:
    """The ``kid`` of a header segment that passes the header rules (kept by segment)."""
    try:
        return _headers[segment]
    except KeyError:
        pass
    header = _json_object(_segment(segment, "header"), "header")
    kid = header.get("kid")
    if "kid" in header and not isinstance(kid, str):
        raise Invalid("the kid must be a string")
    if "crit" in header:
        crit = header["crit"]
        if not isinstance(crit, list) or not crit:
            raise Invalid("crit must be a non-empty list")
        for ext in crit:
            if not isinstance(ext, str) or ext != "b64" or ext not in header:
                raise Invalid("unsupported or missing critical extension")
    if header.get("b64", True) is False:
        raise Invalid("detached payloads (b64: false) are not accepted")
    if header.get("alg") != "HS256":
        raise Invalid("the alg is not HS256")
    if len(_headers) >= _HEADERS:
        _headers.clear()
    _headers[segment] = kid
    return kid


def key_id(token: str) -> str | None:
    """The ``kid`` the token's header names (unverified), or ``None``; ``Invalid`` for a
    token whose header breaks the rules above (nothing else of it is checked here)."""
    return _header(_split(token)[0])


def claims(token: str, secret: str, *, require: tuple[str, ...], now: float) -> dict[str, Any]:
    """The payload of ``token`` if it is signed with ``secret`` and passes the rules above
    at ``now`` (seconds since the epoch); raises :class:`Expired` or :class:`Invalid`."""
    head, body, signature = _split(token)
    _header(head)
    payload_bytes = _segment(body, "payload")
    mac = _segment(signature, "signature")
    key = secret.encode("utf-8")
    if not key:
        raise Invalid("an empty secret verifies nothing")
    expected = _hmac(key, head + b"." + body)
    if not hmac.compare_digest(mac, expected):
        raise Invalid("signature verification failed")
    payload = _json_object(payload_bytes, "payload")
    for claim in require:
        if payload.get(claim) is None:
            raise Invalid(f"the {claim} claim is required")
    if "nbf" in payload and _integer(payload["nbf"], "nbf") > now:
        raise Invalid("the token is not valid yet (nbf)")
    if "exp" in payload and _integer(payload["exp"], "exp") <= now:
        raise Expired("the token has expired")
    if "sub" in payload and not isinstance(payload["sub"], str):
        raise Invalid("the sub must be a string")
    if "jti" in payload and not isinstance(payload["jti"], str):
        raise Invalid("the jti must be a string")
    return payload


def _integer(value: Any, name: str) -> int:
    """``int(value)``, as PyJWT reads ``nbf`` and ``exp`` (a numeric string passes here; the
    caller's own rules refuse it later)."""
    try:
        return int(value)
    except (ValueError, TypeError, OverflowError):
        raise Invalid(f"the {name} claim must be an integer") from None


__all__ = ["Expired", "Invalid", "claims", "key_id"]
