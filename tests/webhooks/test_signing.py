"""The signer against the Standard Webhooks specification's published test vector."""

from __future__ import annotations

import base64

from tidings.webhooks.signing import PREFIX, headers, new_secret, sign, verify

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_published_vector() -> None:
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY) == EXPECTED


def test_headers_and_verification() -> None:
    sent = headers(SECRET, MSG_ID, TIMESTAMP, BODY)
    assert sent == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(TIMESTAMP),
        "webhook-signature": EXPECTED,
    }
    assert verify(SECRET, sent, BODY, now=TIMESTAMP + 10)
    assert not verify(SECRET, sent, BODY + b" ", now=TIMESTAMP)
    assert not verify(SECRET, sent, BODY, now=TIMESTAMP + 301)  # outside the tolerance
    assert not verify(new_secret(), sent, BODY, now=TIMESTAMP)


def test_new_secrets_are_whsec_with_24_random_bytes() -> None:
    one, two = new_secret(), new_secret()
    assert one.startswith(PREFIX) and one != two
    assert len(base64.b64decode(one.removeprefix(PREFIX))) == 24
