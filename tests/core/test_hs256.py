"""``tidings.hs256`` judges every token exactly as PyJWT did (the oracle), only faster.

The oracle is the call ``auth.verify`` made before: ``jwt.decode(token, secret,
algorithms=["HS256"], options={"require": [...], "verify_aud": False, "verify_iat": False})``
plus PyJWT's ``get_unverified_header`` for the ``kid``. Tokens are generated from headers,
payloads, secrets and byte-level mutations of every part (padding, trailing bits, dots,
non-ASCII, truncation), signed right or wrong; for each, both must give the same payload, or
both refuse it, and agree whether it is *expired* (the one refusal with its own code).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tidings import auth, hs256
from tidings.errors import Unauthorized

SECRET = "hs256-secret-" + "0123456789" * 4
REQUIRE = ("exp", "iat", "sub", "tenant")
ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
NOW = time.time()  # claims are generated around it; ours and PyJWT judge at the same moment
DAY = 86400  # a default token's lifetime: it stays valid however slowly the suite runs


def b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def oracle(token: str, secret: str) -> tuple[str, Any]:
    """PyJWT's verdict as ``auth.verify`` used it: ("ok", payload), ("expired", None) or
    ("invalid", None)."""
    try:
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        payload = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience="tidings",
            options={"require": list(REQUIRE), "verify_aud": False, "verify_iat": False},
        )
    except jwt.ExpiredSignatureError:
        return "expired", None
    except (jwt.PyJWTError, UnicodeError):
        return "invalid", None
    return "ok", (kid, payload)


def ours(token: str, secret: str) -> tuple[str, Any]:
    try:
        kid = hs256.key_id(token)
        payload = hs256.claims(token, secret, require=REQUIRE, now=time.time())
    except hs256.Expired:
        return "expired", None
    except hs256.Invalid:
        return "invalid", None
    return "ok", (kid, payload)


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
times = st.one_of(
    st.integers(int(NOW) + 5, int(NOW) + 1000).map(lambda t: t),  # future
    st.integers(int(NOW) - 1000, int(NOW) - 5),  # past
    st.integers(int(NOW) + 5, int(NOW) + 1000).map(str),  # numeric strings (int() reads them)
    st.floats(NOW + 5, NOW + 1000),
    json_scalars,
)
claim_names = ["exp", "iat", "nbf", "sub", "tenant", "jti", "roles", "iss", "aud", "email"]


@st.composite
def payloads(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {
        "exp": int(NOW) + DAY,  # valid all suite long: a slow run once outlived 600 s
        "iat": int(NOW),
        "sub": "ana",
        "tenant": "jump-joy",
    }
    for name in draw(st.lists(st.sampled_from(claim_names), max_size=4, unique=True)):
        if draw(st.booleans()):
            body.pop(name, None)
        elif name in ("exp", "iat", "nbf"):
            body[name] = draw(times)
        else:
            body[name] = draw(st.one_of(json_scalars, st.lists(st.text(max_size=5), max_size=2)))
    return body


@st.composite
def headers(draw: st.DrawFn) -> dict[str, Any]:
    head: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
    changes = draw(
        st.lists(st.sampled_from(["alg", "kid", "crit", "b64", "typ"]), max_size=3, unique=True)
    )
    for name in changes:
        if name == "alg":
            alg = draw(st.sampled_from([None, "none", "HS512", "hs256", "RS256", 1, ""]))
            if alg is None:
                head.pop("alg")
            else:
                head["alg"] = alg
        elif name == "kid":
            head["kid"] = draw(st.one_of(st.text(max_size=6), st.integers(), st.none()))
        elif name == "crit":
            head["crit"] = draw(
                st.sampled_from([[], ["b64"], ["exp"], "b64", [1], ["b64", "x"], None])
            )
        elif name == "b64":
            head["b64"] = draw(st.sampled_from([True, False, 0, None]))
        else:
            head.pop("typ")
    return head


def sign(head: bytes, body: bytes, secret: str) -> bytes:
    return b64(hmac.new(secret.encode(), head + b"." + body, hashlib.sha256).digest())


mutations = st.sampled_from(
    [
        "none",
        "pad-one",
        "pad-two",
        "pad-three",
        "trailing-bits",
        "extra-dot",
        "drop-segment",
        "non-ascii",
        "plus-slash",
        "truncate",
        "whitespace",
        "wrong-secret",
        "utf16-header",
        "array-payload",
    ]
)


@st.composite
def tokens(draw: st.DrawFn) -> str:
    head_obj, body_obj = draw(headers()), draw(payloads())
    mutation = draw(mutations)
    where = draw(st.sampled_from([0, 1, 2]))
    head_raw = json.dumps(head_obj).encode()
    if mutation == "utf16-header":
        head_raw = json.dumps(head_obj).encode("utf-16")
    body_raw = json.dumps(body_obj).encode() if mutation != "array-payload" else b"[1]"
    head, body = b64(head_raw), b64(body_raw)
    secret = SECRET if mutation != "wrong-secret" else SECRET + "x"
    parts = [head, body, sign(head, body, secret)]
    part = parts[where]
    if mutation.startswith("pad-"):
        parts[where] = part + b"=" * {"pad-one": 1, "pad-two": 2, "pad-three": 3}[mutation]
    elif mutation == "trailing-bits" and len(part) % 4 in (2, 3):
        # Set the lowest bit of the final character: a bit past the data (canonical: 0).
        value = ALPHABET.index(part[-1:]) | 1
        parts[where] = part[:-1] + ALPHABET[value : value + 1]
    elif mutation == "extra-dot":
        parts[where] = part[:3] + b"." + part[3:]
    elif mutation == "drop-segment":
        parts.pop(where)
    elif mutation == "plus-slash":
        parts[where] = part.replace(b"-", b"+").replace(b"_", b"/")
    elif mutation == "truncate":
        parts[where] = part[: draw(st.integers(0, max(0, len(part) - 1)))]
    elif mutation == "whitespace":
        parts[where] = part + b" "
    token = b".".join(parts).decode()
    if mutation == "non-ascii":
        token = token[:5] + "é" + token[5:]
    return token


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tokens())
def test_every_token_is_judged_as_pyjwt_judges_it(token: str) -> None:
    assert ours(token, SECRET) == oracle(token, SECRET)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_strings_are_refused_alike(token: str) -> None:
    expected = oracle(token, SECRET)
    assert ours(token, SECRET) == expected
    assert expected[0] == "invalid"


def test_generated_tokens_reach_every_verdict() -> None:
    """The generator is not all refusals: it makes valid, expired and invalid tokens."""
    seen: set[str] = set()

    @settings(max_examples=400, deadline=None, database=None)
    @given(tokens())
    def collect(token: str) -> None:
        seen.add(oracle(token, SECRET)[0])

    collect()
    assert seen == {"ok", "expired", "invalid"}


def test_a_token_minted_by_tidings_verifies_and_its_kid_is_read() -> None:
    token, _ = auth.mint(SECRET, tenant="jump-joy", user="ana", roles=["staff"], ttl=600)
    assert hs256.key_id(token) is None
    principal = auth.verify(SECRET, token, max_ttl=3600)
    assert (principal.tenant, principal.user, principal.roles) == (
        "jump-joy",
        "ana",
        frozenset({"staff"}),
    )
    keyed, _ = auth.mint(SECRET, tenant="jump-joy", user="ana", ttl=600, kid="k1")
    assert auth.key_id(keyed) == "k1"


def test_now_decides_expiry_and_not_before() -> None:
    token, _ = auth.mint(SECRET, tenant="jump-joy", user="ana", ttl=600)
    exp = int(hs256.claims(token, SECRET, require=REQUIRE, now=NOW)["exp"])
    with pytest.raises(hs256.Expired):
        hs256.claims(token, SECRET, require=REQUIRE, now=exp)  # no leeway: at exp it is over
    with pytest.raises(Unauthorized) as raised:
        auth.verify(SECRET, token, max_ttl=3600, now=exp + 1)
    assert raised.value.code == "token_expired"
    head = b64(b'{"alg":"HS256"}')
    body = b64(json.dumps({"exp": exp, "iat": exp - 600, "nbf": exp - 100, "sub": "a",
                           "tenant": "t"}).encode())  # fmt: skip
    early = (head + b"." + body + b"." + sign(head, body, SECRET)).decode()
    with pytest.raises(hs256.Invalid):
        hs256.claims(early, SECRET, require=REQUIRE, now=exp - 101)
    assert hs256.claims(early, SECRET, require=REQUIRE, now=exp - 100)["nbf"] == exp - 100


def test_an_empty_secret_verifies_nothing() -> None:
    head = b64(b'{"alg":"HS256"}')
    body = b64(b'{"exp":9999999999,"iat":1,"sub":"a","tenant":"t"}')
    mac = b64(hmac.new(b"", head + b"." + body, hashlib.sha256).digest())
    with pytest.raises(hs256.Invalid):
        hs256.claims((head + b"." + body + b"." + mac).decode(), "", require=REQUIRE, now=NOW)


def _as_json_loads(data: bytes) -> str:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return "invalid"
    return repr(value) if isinstance(value, dict) else "invalid"


def _as_ours(data: bytes) -> str:
    try:
        return repr(hs256._json_object(data, "payload"))
    except hs256.Invalid:
        return "invalid"


# Keys: any text, and a few that only some decodings take (lone surrogates, NUL, non-ASCII).
KEYS = st.one_of(st.text(max_size=4), st.sampled_from(["\ud800", "a\udfff", "\x00", "é"]))
json_texts = st.recursive(
    st.one_of(json_scalars, st.text(max_size=6)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=600, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=24),
        st.binary(max_size=24).map(lambda b: b"{" + b),
        st.tuples(
            st.dictionaries(KEYS, json_texts, max_size=4),
            st.sampled_from(["utf-8", "utf-16", "utf-16-le", "utf-32", "utf-8-sig"]),
            st.booleans(),
            st.sampled_from(["", " ", "\n", "x", "}"]),
        ).map(lambda t: (json.dumps(t[0], ensure_ascii=t[2]) + t[3]).encode(t[1], "surrogatepass")),
    )
)
def test_a_payload_is_read_exactly_as_json_loads_reads_it(data: bytes) -> None:
    """The segment's JSON is read as PyJWT reads it (``json.loads`` of the bytes: any UTF
    encoding it detects, NaN, big integers, lone surrogates, trailing data refused)."""
    assert _as_ours(data) == _as_json_loads(data)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(st.binary(max_size=130), st.sampled_from([b"", b"k" * 64, b"k" * 65, b"\x00" * 64])),
    st.binary(max_size=300),
)
def test_the_mac_is_hmac_sha256_for_every_key_and_message(key: bytes, message: bytes) -> None:
    """``_hmac`` (the key's hash states made once, copied per message) is HMAC-SHA256 as the
    standard library computes it, for keys shorter than, equal to and longer than the 64-byte
    block, and the same again when the key's states are reused."""
    expected = hmac.digest(key, message, "sha256")
    assert hs256._hmac(key, message) == expected
    assert hs256._hmac(key, message) == expected  # from the kept states, not consumed by one use
    assert hs256._hmac(key, message + b".") == hmac.digest(key, message + b".", "sha256")


def test_the_mac_states_kept_are_bounded() -> None:
    """At most ``_KEYS`` keys' states are kept (a server secret and the tenants' signing keys:
    more keys than that start the set over), and a key seen again verifies as before."""
    keys = [b"key-%d" % i for i in range(hs256._KEYS * 3)]
    for key in keys:
        assert hs256._hmac(key, b"m") == hmac.digest(key, b"m", "sha256")
        assert len(hs256._keys) <= hs256._KEYS
    assert hs256._hmac(keys[0], b"m") == hmac.digest(keys[0], b"m", "sha256")
