"""The extensions tidings ships, and which of them a process runs.

``bundled(settings)`` is what ``tidings serve`` and ``tidings demo`` run: the channels, the
outbox (its consumer only with ``TIDINGS_OUTBOX_URL``) and the webhooks always, the demo when
``TIDINGS_DEMO`` is on (refused with ``TIDINGS_ENV=production``:
:class:`tidings.demo.DemoInProduction`). A host application embedding tidings passes its own
list to :func:`tidings.app.create_app`.

``schema_for(extensions)`` is the schema a process with those extensions migrates: the core's
branch and theirs (:class:`tidings.store.migrate.Schema` knows every shipped branch besides, so
a database another process upgraded with the demo still opens without it).
"""

from __future__ import annotations

from collections.abc import Sequence

from tidings.config import Settings
from tidings.extension import Extension
from tidings.store.migrate import Schema, shipped


def bundled(settings: Settings) -> list[Extension]:
    from tidings.channels import ChannelsExtension
    from tidings.demo import DemoExtension
    from tidings.outbox import OutboxExtension
    from tidings.webhooks import WebhooksExtension

    chosen: list[Extension] = [DemoExtension(settings.env)] if settings.demo else []
    # The demo's seeding runs before the channels start; the outbox consumer (only with
    # TIDINGS_OUTBOX_URL) last.
    return [*chosen, ChannelsExtension(), OutboxExtension(), WebhooksExtension()]


def schema_for(extensions: Sequence[Extension]) -> Schema:
    """The core's branch and those of ``extensions`` (known besides every shipped one)."""
    own = tuple(ext.migrations for ext in extensions if ext.migrations is not None)
    return Schema(own, tuple(branch.label for branch in own))


def bundled_schema(settings: Settings) -> Schema:
    """The schema of :func:`bundled` without building the extensions (the CLI's commands)."""
    wanted = ("demo", "channels") if settings.demo else ("channels",)
    return Schema(wanted=(*wanted, "webhooks"))


def every_branch() -> Schema:
    """Every shipped branch, all wanted: the schema the test databases are made with."""
    return Schema(wanted=tuple(branch.label for branch in shipped()))


__all__ = ["bundled", "bundled_schema", "every_branch", "schema_for"]
