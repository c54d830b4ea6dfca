"""Small pure parts of the channels: preference resolution, periods, host rules, tokens."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import pytest

from tests.channels.conftest import Device
from tidings import auth
from tidings.channels import unsubscribe, webpush
from tidings.channels.digest import period_of
from tidings.channels.preferences import (
    Effective,
    QuietHours,
    TenantPreferences,
    UserPreferences,
)
from tidings.channels.pushqueue import MAX_PAYLOAD, payload
from tidings.domain.notifications import Notification
from tidings.errors import BadRequest, Unauthorized, ValidationFailed


def prefs(
    user: dict[str, object] | None = None,
    tenant: dict[str, object] | None = None,
    zone: str | None = None,
) -> Effective:
    return Effective(
        UserPreferences.model_validate(user or {}),
        TenantPreferences.model_validate(tenant or {}),
        zone,
    )


def test_resolution_user_over_tenant_over_default() -> None:
    p = prefs(
        user={"types": {"a": {"push": True}}, "channels": {"email": False}},
        tenant={
            "types": {"a": {"push": False, "email": True}, "b": {"push": False}},
            "channels": {"push": True},
        },
    )
    assert p.allows("a", "push") is True  # the user's switch wins
    assert p.allows("b", "push") is False  # the tenant's default
    assert p.allows("c", "push") is True  # nobody said anything
    assert p.allows("a", "email") is False  # the user's master switch is off
    assert prefs(tenant={"channels": {"push": False}}).allows("x", "push") is False


def test_critical_types_are_always_in_app_and_never_muted() -> None:
    p = prefs(
        user={
            "types": {
                "system": {"in_app": False, "push": False},
                "booking_created": {"in_app": False},
            }
        },
        tenant={"critical_types": ["system"]},
    )
    assert p.allows("system", "in_app") is True
    assert p.allows("system", "push") is False  # critical is about in-app only
    assert p.muted_types() == frozenset({"booking_created"})
    assert prefs(tenant={"types": {"x.y": {"in_app": False}}}).muted_types() == {"x.y"}


@pytest.mark.parametrize(
    ("start", "end", "inside", "outside"),
    [
        ("22:00", "07:00", [time(23, 30), time(0, 0), time(6, 59)], [time(7, 0), time(21, 59)]),
        ("09:00", "17:00", [time(9, 0), time(16, 59)], [time(8, 59), time(17, 0)]),
    ],
)
def test_quiet_hours_wrap_midnight(
    start: str, end: str, inside: list[time], outside: list[time]
) -> None:
    window = QuietHours(start=start, end=end)
    assert all(window.contains(t) for t in inside)
    assert not any(window.contains(t) for t in outside)
    assert not QuietHours(enabled=False).contains(time(23, 0))


def test_quiet_hours_use_the_users_zone() -> None:
    p = prefs(user={"quiet_hours": {"start": "22:00", "end": "07:00"}}, zone="Asia/Tokyo")
    assert p.quiet_at(datetime(2026, 11, 25, 14, 0, tzinfo=UTC)) is True  # 23:00 in Tokyo
    assert p.quiet_at(datetime(2026, 11, 25, 3, 0, tzinfo=UTC)) is False  # 12:00 in Tokyo


def test_digest_periods_in_local_time() -> None:
    daily = prefs(user={"digest": {"cadence": "daily", "hour": 18}}, zone="Europe/Berlin")
    assert period_of(datetime(2026, 11, 25, 16, 59, tzinfo=UTC), daily) is None  # 17:59
    found = period_of(datetime(2026, 11, 25, 17, 0, tzinfo=UTC), daily)
    assert found is not None and found[0] == "daily:2026-11-25"
    late = period_of(datetime(2026, 11, 25, 22, 59, tzinfo=UTC), daily)  # 23:59 local
    assert late is not None and late[0] == "daily:2026-11-25"
    hourly = prefs(user={"digest": {"cadence": "hourly"}}, zone="America/New_York")
    found = period_of(datetime(2026, 11, 25, 23, 30, tzinfo=UTC), hourly)
    assert found is not None and found[0] == "hourly:2026-11-25T18"
    assert (
        period_of(
            datetime(2026, 11, 25, 23, 30, tzinfo=UTC), prefs(user={"digest": {"cadence": "off"}})
        )
        is None
    )


def test_bad_preferences_are_refused() -> None:
    bad: Any
    for bad in (
        {"types": {"A": {}}},
        {"types": {"a": {"fax": True}}},
        {"channels": {"in_app": False}},
        {"digest": {"hour": "7"}},
    ):
        with pytest.raises(ValueError, match="validation error"):
            UserPreferences.model_validate(bad)
    with pytest.raises(ValueError, match="IANA"):
        TenantPreferences.model_validate({"time_zone": "Europe/Atlantis"})


def test_host_rules() -> None:
    rules = webpush.HostRules("*.googleapis.com, push.example.org")
    assert rules.allows("fcm.googleapis.com") and rules.allows("PUSH.example.org")
    assert not rules.allows("googleapis.com.evil.net") and not rules.allows("example.org")
    assert webpush.HostRules("*").allows("anything.example")


def test_a_browser_subscription_passes_the_checks() -> None:
    sub = Device("d", "https://fcm.googleapis.com/fcm/send/abc").subscription()
    rules = webpush.HostRules("*.googleapis.com")
    webpush.check_subscription(sub["endpoint"], sub["keys"]["p256dh"], sub["keys"]["auth"], rules)
    with pytest.raises(ValidationFailed):
        webpush.check_subscription(sub["endpoint"], sub["keys"]["auth"], sub["keys"]["auth"], rules)


def test_unsubscribe_tokens_are_not_stream_tokens() -> None:
    secret = "s" * 40
    link_token = unsubscribe.make_token(secret, "jump-joy", "ann")
    assert unsubscribe.read_token(secret, link_token) == ("jump-joy", "ann")
    with pytest.raises(Unauthorized):
        auth.verify(secret, link_token, max_ttl=3600)
    stream_token, _ = auth.mint(secret, tenant="jump-joy", user="ann", ttl=60)
    with pytest.raises(BadRequest):
        unsubscribe.read_token(secret, stream_token)
    with pytest.raises(BadRequest):
        unsubscribe.read_token("other" * 10, link_token)


def test_push_payload_is_bounded_and_links_are_absolute() -> None:
    item = Notification(
        "t",
        9,
        "system",
        "T" * 500,
        "B" * 20_000,
        {"big": "x" * 5000},
        "/a/b",
        None,
        datetime(2026, 11, 25, tzinfo=UTC),
    )
    body = payload(item, "https://app.example/")
    assert len(body) <= MAX_PAYLOAD
    assert b'"url":"https://app.example/a/b"' in body and b"big" not in body
    bare = Notification("t", 9, "system", "x", "", {}, None, None, datetime(2026, 1, 1, tzinfo=UTC))
    assert b'"url":"https://app.example/"' in payload(bare, "https://app.example/")
