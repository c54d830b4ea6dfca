"""Alembic, driven programmatically on a connection the :class:`Store` already holds.

Each package keeps its own schema history, an Alembic branch in a directory of its own
(``version_locations``): ``core`` here (``migrations/versions``), ``channels`` and ``demo`` in
theirs. A :class:`Schema` says which branches this process wants at head, and which it knows:
every branch shipped in tidings' own packages (by the convention that a package's
``migrations/`` directory holds its branch, labelled with the package's name: nothing is
imported or named here) and those of the extensions it was given. Knowing them all matters: a
database another process upgraded with more extensions (the demo) must still be readable.

The core is always upgraded first, alone (its ``0005_branches`` bridges databases made by the
single chain that came before the branches); then each wanted branch. A database upgraded
without the demo never gets the demo's tables.

A database already at every wanted head (every start but the first after an upgrade) costs a
look at ``alembic_version`` (whether it exists, its rows): the heads the scripts define are
read once per process and schema (:func:`heads`), and Alembic runs only when one of them is not
among the database's current heads, or the database holds a revision the scripts do not know
(a newer release's, which Alembic refuses as before).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

MIGRATIONS = Path(__file__).parent / "migrations"
PACKAGE = Path(__file__).parent.parent
CORE = "core"


@dataclass(frozen=True)
class Branch:
    """One package's schema history: its Alembic branch label and its version directory."""

    label: str
    location: Path


@dataclass(frozen=True)
class Schema:
    """The branches a process knows and the labels it upgrades to head (the core always)."""

    known: tuple[Branch, ...] = ()
    wanted: tuple[str, ...] = field(default=())

    def branches(self) -> list[Branch]:
        found = {branch.label: branch for branch in (*shipped(), *self.known)}
        return list(found.values())

    def locations(self) -> list[Path]:
        return [MIGRATIONS / "versions", *(branch.location for branch in self.branches())]

    def targets(self) -> list[str]:
        labels = {branch.label for branch in self.branches()}
        unknown = [label for label in self.wanted if label not in labels and label != CORE]
        if unknown:
            raise ValueError(f"no migrations known for {', '.join(unknown)}")
        return [CORE, *(label for label in self.wanted if label != CORE)]


def shipped() -> tuple[Branch, ...]:
    """The branches of tidings' own packages: ``tidings/<package>/migrations/``."""
    return tuple(
        Branch(path.parent.name, path)
        for path in sorted(PACKAGE.glob("*/migrations"))
        if path.is_dir() and path != MIGRATIONS
    )


def alembic_config(connection: Connection | None = None, schema: Schema = Schema()) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # The path separator of version_locations: a newline, so no directory name can break it.
    cfg.set_main_option("path_separator", "newline")
    cfg.set_main_option("version_locations", "\n".join(str(p) for p in schema.locations()))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@dataclass(frozen=True)
class Heads:
    """What the migration scripts define for one schema: the head revision of the core and of
    each wanted branch, and every revision they know."""

    wanted: frozenset[str]
    known: frozenset[str]

    def reached_by(self, current: set[str]) -> bool:
        """Whether a database whose ``alembic_version`` holds ``current`` is at every wanted
        head and holds no revision these scripts do not know (one of a newer release goes
        through Alembic, which refuses it as before)."""
        return self.wanted <= current <= self.known


@functools.cache
def heads(schema: Schema) -> Heads:
    """:class:`Heads` of ``schema``, from the scripts (read once per process and schema: they
    ship with the code)."""
    script = ScriptDirectory.from_config(alembic_config(None, schema))
    wanted = frozenset(
        revision.revision
        for label in schema.targets()
        for revision in script.get_revisions(f"{label}@head")
        if revision is not None
    )
    return Heads(wanted, frozenset(revision.revision for revision in script.walk_revisions()))


def upgrade(connection: Connection, schema: Schema = Schema()) -> None:
    """Upgrade the core, then each wanted branch, to its head (one Alembic run each); nothing
    but a look at ``alembic_version`` when the database is at every wanted head already."""
    if heads(schema).reached_by(set(MigrationContext.configure(connection).get_current_heads())):
        return
    cfg = alembic_config(connection, schema)
    for label in schema.targets():
        command.upgrade(cfg, f"{label}@head")
