"""``verify_webhook`` / ``sign_webhook`` against the Standard Webhooks specification: its
published test vectors (the reference libraries' tests, github.com/standard-webhooks/
standard-webhooks, ``libraries/*/…test…``) and every way a delivery can be refused."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from starlette.datastructures import Headers

from tidings.client import (
    WebhookEvent,
    WebhookVerificationError,
    sign_webhook,
    verify_webhook,
)

# The specification's vector: "sign function works" in every reference library.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = '{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
# Signatures of the reference tests that match nothing (multi-signature and invalid cases).
SPEC_OTHERS = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
SPEC_ALMOST = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="

EVENT = json.dumps(
    {
        "type": "notification.read",
        "timestamp": "2026-11-26T20:00:00.000000Z",
        "data": {"tenant": "acme", "user": "ann", "ids": [7]},
    },
    separators=(",", ":"),
).encode()


def spec_headers(signature: str = SPEC_SIGNATURE) -> dict[str, str]:
    return {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": signature,
    }


def signed(
    body: bytes = EVENT, *, at: int = SPEC_TIMESTAMP, secret: str = SPEC_SECRET
) -> dict[str, str]:
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(at),
        "webhook-signature": sign_webhook(secret, "msg_1", at, body),
    }


@contextmanager
def refused(reason: str) -> Iterator[pytest.ExceptionInfo[WebhookVerificationError]]:
    with pytest.raises(WebhookVerificationError) as caught:
        yield caught
    assert caught.value.reason == reason, caught.value


def test_sign_matches_the_specification_vector() -> None:
    assert sign_webhook(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    # The same key given bare (no whsec_), as bytes, and a body given as bytes.
    bare = SPEC_SECRET.removeprefix("whsec_")
    assert sign_webhook(bare, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY.encode()) == SPEC_SIGNATURE
    raw = base64.b64decode(bare)
    assert sign_webhook(raw, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_the_specification_vector_verifies() -> None:
    """The vector's signature is accepted (with and without the ``whsec_`` prefix); its body is
    ``{"test": …}``, not a tidings event, so what follows the signature check says so."""
    for secret in (SPEC_SECRET, SPEC_SECRET.removeprefix("whsec_")):
        with refused("invalid_payload") as error:
            verify_webhook(secret, spec_headers(), SPEC_BODY, now=SPEC_TIMESTAMP)
        assert "event" in str(error.value)
    with refused("invalid_signature"):
        verify_webhook(SPEC_SECRET, spec_headers(), SPEC_BODY + " ", now=SPEC_TIMESTAMP)


def test_the_specification_multi_signature_header() -> None:
    """A v2 entry, wrong v1 entries and the right one, space-separated: accepted."""
    header = " ".join([SPEC_OTHERS, SPEC_OTHERS.replace("v1,", "v2,"), SPEC_SIGNATURE, SPEC_OTHERS])
    with refused("invalid_payload"):
        verify_webhook(SPEC_SECRET, spec_headers(header), SPEC_BODY, now=SPEC_TIMESTAMP)
    wrong = " ".join([SPEC_OTHERS, SPEC_ALMOST])
    with refused("invalid_signature"):
        verify_webhook(SPEC_SECRET, spec_headers(wrong), SPEC_BODY, now=SPEC_TIMESTAMP)


@pytest.mark.parametrize(
    "signature",
    [
        SPEC_ALMOST,  # "invalid signature"
        "v1,dawfeoifkpqwoekfpqoekf",  # not even base64 of a digest
        SPEC_SIGNATURE[:8],  # "partial signature"
        "v1,",
        "v1a," + SPEC_SIGNATURE[3:],  # an asymmetric entry is not ours to check
        SPEC_SIGNATURE[3:],  # no version
        "v1;" + SPEC_SIGNATURE[3:],
    ],
)
def test_signatures_that_do_not_match_are_refused(signature: str) -> None:
    with refused("invalid_signature"):
        verify_webhook(SPEC_SECRET, spec_headers(signature), SPEC_BODY, now=SPEC_TIMESTAMP)


def test_a_tidings_delivery_verifies_into_its_event() -> None:
    headers = signed()
    event = verify_webhook(SPEC_SECRET, headers, EVENT, now=SPEC_TIMESTAMP + 1)
    assert event == WebhookEvent(
        id="msg_1",
        type="notification.read",
        timestamp="2026-11-26T20:00:00.000000Z",
        data={"tenant": "acme", "user": "ann", "ids": [7]},
        payload=json.loads(EVENT),
        attempted_at=SPEC_TIMESTAMP,
    )
    # Header names in any case (what a framework's header mapping gives), the body as text.
    shouting = {name.upper(): value for name, value in headers.items()}
    assert verify_webhook(SPEC_SECRET, shouting, EVENT.decode(), now=SPEC_TIMESTAMP) == event
    assert verify_webhook(SPEC_SECRET, headers, bytearray(EVENT), now=SPEC_TIMESTAMP) == event


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(missing: str) -> None:
    headers = signed()
    del headers[missing]
    with refused("missing_header") as error:
        verify_webhook(SPEC_SECRET, headers, EVENT)
    assert missing in str(error.value)
    headers[missing] = "  "
    with refused("missing_header"):
        verify_webhook(SPEC_SECRET, headers, EVENT)


@pytest.mark.parametrize("stamp", ["hello", "1614265330.5", "-1614265330", "1e9", "", "\uff10"])
def test_a_timestamp_that_is_not_unix_seconds_is_refused(stamp: str) -> None:
    headers = signed() | {"webhook-timestamp": stamp}
    reason = "missing_header" if stamp == "" else "invalid_timestamp"
    with refused(reason):
        verify_webhook(SPEC_SECRET, headers, EVENT, now=SPEC_TIMESTAMP)


def test_stale_and_future_attempts_are_refused_at_the_tolerance() -> None:
    """As in the reference tests: 5 minutes either way by default; one second beyond fails."""
    at = SPEC_TIMESTAMP
    for now in (at - 300, at + 300):
        assert verify_webhook(SPEC_SECRET, signed(at=at), EVENT, now=now).attempted_at == at
    with refused("timestamp_too_old"):
        verify_webhook(SPEC_SECRET, signed(at=at), EVENT, now=at + 301)
    with refused("timestamp_too_new"):
        verify_webhook(SPEC_SECRET, signed(at=at), EVENT, now=at - 301)
    with refused("timestamp_too_old"):
        verify_webhook(SPEC_SECRET, signed(at=at), EVENT, now=at + 31, tolerance=30)
    # The local clock by default: a delivery signed now passes, one from 10 minutes ago not.
    import time

    now = int(time.time())
    assert verify_webhook(SPEC_SECRET, signed(at=now), EVENT).type == "notification.read"
    with refused("timestamp_too_old"):
        verify_webhook(SPEC_SECRET, signed(at=now - 600), EVENT)


def test_the_timestamp_is_signed() -> None:
    """Moving a captured delivery's timestamp forward (to pass the window) breaks it."""
    headers = signed() | {"webhook-timestamp": str(SPEC_TIMESTAMP + 100)}
    with refused("invalid_signature"):
        verify_webhook(SPEC_SECRET, headers, EVENT, now=SPEC_TIMESTAMP)
    headers = signed() | {"webhook-id": "msg_2"}
    with refused("invalid_signature"):
        verify_webhook(SPEC_SECRET, headers, EVENT, now=SPEC_TIMESTAMP)


def test_rotation_several_secrets_and_several_signatures() -> None:
    old = "whsec_" + base64.b64encode(b"o" * 32).decode()
    new = "whsec_" + base64.b64encode(b"n" * 32).decode()
    by_old = signed(secret=old)
    by_both = by_old | {
        "webhook-signature": by_old["webhook-signature"]
        + " "
        + sign_webhook(new, "msg_1", SPEC_TIMESTAMP, EVENT)
    }
    # The receiver knows both while rotating; after it, only the new one.
    assert verify_webhook([new, old], by_old, EVENT, now=SPEC_TIMESTAMP).id == "msg_1"
    assert verify_webhook([new], by_both, EVENT, now=SPEC_TIMESTAMP).id == "msg_1"
    assert verify_webhook(new, by_both, EVENT, now=SPEC_TIMESTAMP).id == "msg_1"
    with refused("invalid_signature"):
        verify_webhook(new, by_old, EVENT, now=SPEC_TIMESTAMP)
    # A signature header sent twice (a proxy split it) is one list: Starlette's headers.
    raw = [(b"webhook-id", b"msg_1"), (b"webhook-timestamp", str(SPEC_TIMESTAMP).encode())]
    raw += [(b"webhook-signature", s.encode()) for s in by_both["webhook-signature"].split()]
    assert verify_webhook(new, Headers(raw=raw), EVENT, now=SPEC_TIMESTAMP).id == "msg_1"
    assert verify_webhook(old, Headers(raw=raw), EVENT, now=SPEC_TIMESTAMP).id == "msg_1"


def test_a_signed_body_that_is_no_event_is_refused() -> None:
    for body in (b"[1, 2]", b'{"data": {}}', b'{"type": 7}', b"not json", b"\xff\xfe"):
        with refused("invalid_payload"):
            verify_webhook(SPEC_SECRET, signed(body), body, now=SPEC_TIMESTAMP)


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_not base64!", b""])
def test_a_secret_that_is_no_key_is_the_callers_error(secret: str | bytes) -> None:
    with pytest.raises(ValueError, match="secret"):
        verify_webhook(secret, signed(), EVENT, now=SPEC_TIMESTAMP)
    with pytest.raises(ValueError, match="secret"):
        verify_webhook([], signed(), EVENT, now=SPEC_TIMESTAMP)
