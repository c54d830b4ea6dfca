"""Password hashing with the standard library's scrypt (RFC 7914).

Stored form: ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>``, so the cost can be raised later
without invalidating existing hashes. Comparison is constant-time, and a sign-in for an e-mail
that matches nobody verifies against :func:`dummy_hash` (same cost), so how long a sign-in takes
does not tell which e-mails exist.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

N, R, P, DKLEN = 2**14, 8, 1, 32


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    derived = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=DKLEN)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(derived)}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; False for any malformed hash."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        derived = hashlib.scrypt(
            password.encode()[:1024],
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(base64.b64decode(expected)),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(derived, base64.b64decode(expected))


@functools.cache
def dummy_hash() -> str:
    """A hash of a random password with the current cost: what an unknown e-mail is checked
    against. Made once per process (warm it at start-up, off the event loop)."""
    return hash_password(secrets.token_urlsafe(16))
