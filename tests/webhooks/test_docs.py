"""docs/webhooks.md keeps up with the code: its catalogue is the catalogue, its settings table
names every ``TIDINGS_WEBHOOK_*`` setting with its default, and it keeps the heading the SDK's
section is written under."""

from __future__ import annotations

import re
from pathlib import Path

from tidings.config import Settings
from tidings.webhooks.catalogue import EVENT_TYPES

DOC = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()


def _section(title: str) -> str:
    return DOC.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_catalogue_is_documented_in_order() -> None:
    rows = re.findall(r"^\| `([a-z_.]+)` \|", _section("Event catalogue"), re.M)
    assert tuple(rows) == EVENT_TYPES


def test_every_setting_is_documented_with_its_default() -> None:
    fields = {n: f for n, f in Settings.model_fields.items() if n.startswith("webhook_")}
    rows = dict(re.findall(r"^\| `TIDINGS_(WEBHOOK_[A-Z_]+)` \| ([^|]*) \|", DOC, re.M))
    assert {n.upper() for n in fields} == set(rows)
    for name, field in fields.items():
        shown = rows[name.upper()].strip().strip("`")
        expected = field.default or "empty"
        assert shown == str(int(expected) if isinstance(expected, float) else expected), name


def test_the_sdk_section_heading_is_there() -> None:
    assert "\n## Verifying a delivery\n" in DOC
