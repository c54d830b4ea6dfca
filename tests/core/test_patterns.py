"""Identifier rules end at the end of the string, not before a final newline.

Python's ``$`` also matches before a trailing ``\\n``: ``re.match(r"^[a-z]+$", "acme\\n")`` is a
match. Every identifier rule that is checked with ``re.match`` therefore ends in ``\\Z``, so an id
with a newline (which would reach logs, SSE ``id:`` lines and the store) is refused.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from tidings import auth
from tidings.channels import reminders, schemas
from tidings.demo import domain as demo_domain
from tidings.demo import prefsform
from tidings.domain.notifications import TYPE_PATTERN, Audience, NewNotification
from tidings.errors import ValidationFailed
from tidings.store import signingkeys, tenants

RULES: list[tuple[str, re.Pattern[str], str]] = [
    ("tenant id", tenants.TENANT_ID, "jump-joy"),
    ("api key id", tenants.KEY_ID, "abcdefABCDEF"),
    ("api key", tenants.KEY_FORMAT, "tdg_abcdefABCDEF_" + "x" * 32),
    ("signing key id", signingkeys.KID, "tsk_0123456789abcdef"),
    ("notification type", TYPE_PATTERN, "booking_created"),
    ("reminder key", reminders.KEY_PATTERN, "booking:7:start"),
    ("role", schemas._ROLE, "owner"),
    ("token e-mail", auth._EMAIL, "ann@example.com"),
    ("demo e-mail", demo_domain._EMAIL, "ann@example.com"),
    ("demo phone", demo_domain._PHONE, "+1 555 0100"),
    ("demo time", demo_domain._TIME, "10:00"),
    ("quiet hours", prefsform._HHMM, "22:00"),
]


@pytest.mark.parametrize(("name", "rule", "valid"), RULES, ids=[r[0] for r in RULES])
def test_a_final_newline_is_refused(name: str, rule: re.Pattern[str], valid: str) -> None:
    assert rule.match(valid), f"{name}: the valid example must pass"
    assert not rule.match(valid + "\n"), f"{name}: a final newline must not pass"


def test_notification_models_refuse_a_final_newline() -> None:
    with pytest.raises(ValidationError):
        NewNotification(type="booking_created\n", title="t")
    with pytest.raises(ValidationError):
        Audience(users=("ann\n",))
    with pytest.raises(ValidationError):
        Audience(roles=("owner\n",))


def test_minted_tokens_refuse_a_final_newline() -> None:
    secret = "s" * 40
    cases: list[dict[str, Any]] = [{"user": "ann\n"}, {"user": "ann", "roles": ["owner\n"]}]
    for kwargs in cases:
        with pytest.raises(ValidationFailed):
            auth.mint(secret, tenant="jump-joy", ttl=60, **kwargs)
    with pytest.raises(ValidationFailed):
        auth.mint(secret, tenant="jump-joy", user="ann", ttl=60, email="ann@example.com\n")
    with pytest.raises(ValidationFailed):
        auth.mint(secret, tenant="jump-joy", user="ann", ttl=60, email="a\x00n@example.com")
