"""The preferences forms without a server: a form shown and sent back unchanged stores nothing
new; only what differs from the business is stored; critical and API-only types survive."""

from __future__ import annotations

import pytest

from tidings.channels.preferences import (
    ChannelSwitches,
    Digest,
    QuietHours,
    TenantPreferences,
    TypeSwitches,
    UserPreferences,
)
from tidings.demo import prefsform
from tidings.demo.domain import FormErrors

TENANT = TenantPreferences(
    types={"customer_created": TypeSwitches(push=False)},
    channels=ChannelSwitches(email=False),
    digest=Digest(cadence="daily", hour=7),
    quiet_hours=QuietHours(start="23:00", end="06:00"),
    time_zone="Europe/Berlin",
    critical_types=("system", "custom.alarm"),
)


def test_a_form_sent_back_unchanged_keeps_what_is_stored() -> None:
    mine = UserPreferences(
        types={"booking_created": TypeSwitches(in_app=False), "system": TypeSwitches(in_app=False)},
        quiet_hours=QuietHours(enabled=False),
    )
    types = prefsform.type_names(mine, TENANT)
    assert types[: len(prefsform.DEMO_TYPES)] == list(prefsform.DEMO_TYPES)
    assert "custom.alarm" in types  # critical through the API: kept on the form
    values = prefsform.user_values(mine, TENANT, "Asia/Tokyo", types)
    assert "channel.email" not in values  # the business switched e-mail off
    assert "customer_created.push" not in values
    assert "quiet.enabled" not in values
    assert values["digest.hour"] == "7"
    prefs, zone = prefsform.parse_user(values, types, mine, TENANT)
    assert (prefs, zone) == (mine, "Asia/Tokyo")


def test_only_what_differs_from_the_business_is_stored() -> None:
    types = prefsform.type_names(TENANT)
    values = prefsform.user_values(UserPreferences(), TENANT, None, types)
    values["customer_created.push"] = "on"  # the business has it off
    del values["reminder.email"]
    values["channel.email"] = "on"
    values.pop("quiet.enabled")  # the business has quiet hours: an explicit "none"
    prefs, zone = prefsform.parse_user(values, types, UserPreferences(), TENANT)
    assert zone is None
    assert prefs == UserPreferences(
        types={
            "customer_created": TypeSwitches(push=True),
            "reminder": TypeSwitches(email=False),
        },
        channels=ChannelSwitches(email=True),
        quiet_hours=QuietHours(enabled=False),
    )


def test_the_business_form_round_trips() -> None:
    types = prefsform.type_names(TENANT)
    values = prefsform.tenant_values(TENANT, types)
    assert values["system.critical"] == values["custom.alarm.critical"] == "on"
    assert values["reminder_lead_hours"] == "24"
    parsed = prefsform.parse_tenant(values, types)
    assert parsed == TENANT


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": ""}, "time_zone"),
        ({"digest.hour": "24"}, "digest.hour"),
        ({"digest.hour": "\u0661"}, "digest.hour"),  # an Arabic-Indic one: not 0-9
        ({"reminder_lead_hours": "-3"}, "reminder_lead_hours"),
        ({"reminder_lead_hours": "inf"}, "reminder_lead_hours"),
        ({"quiet.enabled": "on", "quiet.start": "25:00"}, "quiet.start"),
    ],
)
def test_bad_business_input_names_the_field(change: dict[str, str], field: str) -> None:
    types = prefsform.type_names(TENANT)
    with pytest.raises(FormErrors) as caught:
        prefsform.parse_tenant({**prefsform.tenant_values(TENANT, types), **change}, types)
    assert field in caught.value.fields
