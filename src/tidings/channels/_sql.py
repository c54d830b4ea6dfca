"""Small SQL helpers shared by the channels' query modules."""

from __future__ import annotations

import enum

from tidings.store.upsert import upsert

__all__ = ["KEEP", "Keep", "upsert"]


class Keep(enum.Enum):
    """Sentinel for "leave this field as it is" in partial updates."""

    KEEP = 0


KEEP = Keep.KEEP
