"""Per-type notification templates of a tenant (issue 10 item 5): registering them, and the
hook that renders a publish without a title before the store inserts it.

Choice (docs/i18n.md): a templated notification is rendered **once, at publish**, for every
locale its type has a template for. The default locale's text is its ``title``/``body`` (as for
any notification), and every locale's, the default's included, goes to ``l10n``
(``{"en": {"title", "body"}, "de": {…}}``: a reader of ``en`` must find ``en`` before a
``en-US`` variant, and a client can tell which locale ``title`` is in), stored with the
row and carried by the stream frame, so the hub still encodes one frame per notification for
all subscribers. Each reader picks its language (:func:`tidings.domain.locales.pick`).

Invariants:
- only a request without a title is rendered; one with a title is stored as sent;
- a template is compiled (:mod:`tidings.domain.templating`) before it is saved: a syntax
  error or anything the sandbox refuses is a 422 ``invalid_template`` and nothing changes;
- a render that fails, or text over the settings' limits, is a 422 ``template_failed`` and
  nothing of the request is stored;
- the fingerprint of a rendered request is the one of the request as sent, so a retry with the
  same ``Idempotency-Key`` matches even if the templates changed in between.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.config import Settings
from tidings.domain.locales import canonical, is_locale
from tidings.domain.notifications import TYPE_PATTERN, NewNotification, utcnow
from tidings.domain.templating import Pair, TemplateProblem
from tidings.errors import Code, Conflict, NotFound, ValidationFailed
from tidings.store import Store
from tidings.store import templates as tq
from tidings.store.templates import TemplateSet


def context(new: NewNotification, locale: str) -> dict[str, Any]:
    """What a template sees: ``data``'s keys, and ``data``, ``type``, ``actor``, ``link``,
    ``locale`` (these win over keys of ``data`` with the same name)."""
    return {
        **new.data,
        "data": new.data,
        "type": new.type,
        "actor": new.actor.public() if new.actor else None,
        "link": new.link,
        "locale": locale,
    }


class Templates:
    """The tenant's templates over the store (no cache of rows: every templated publish reads
    its type's row, so a change counts at once on every instance; compiled templates are
    cached by source in :func:`tidings.domain.templating.compile_one`)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    # -- registering -----------------------------------------------------------------------------

    def check(
        self, type_: str, default_locale: str, locales: Mapping[str, Mapping[str, str]]
    ) -> tuple[str, dict[str, dict[str, str]]]:
        """The canonical default locale and locales, every template compiled; 422 otherwise."""
        if not TYPE_PATTERN.match(type_):
            raise ValidationFailed(
                "type is lower-case letters, digits, '_' and '.', starting with a letter."
            )
        cap = self.settings.max_template_locales
        if not locales or len(locales) > cap:
            raise ValidationFailed(f"locales holds 1 to {cap} locales.")
        out: dict[str, dict[str, str]] = {}
        for tag, pair in locales.items():
            if not is_locale(tag):
                raise ValidationFailed(f"{tag!r} is not a BCP 47 language tag (e.g. 'de-AT').")
            title, body = pair.get("title", ""), pair.get("body", "")
            if not title.strip():
                raise ValidationFailed(f"The title template of {tag!r} is empty.")
            try:
                Pair.of(title, body)
            except TemplateProblem as error:
                raise ValidationFailed(
                    f"The {error.field} template of {tag!r} is not valid: {error.message}",
                    code=Code.INVALID_TEMPLATE,
                    extra={"locale": tag, "field": error.field},
                ) from error
            if canonical(tag) in out:
                raise ValidationFailed(f"{tag!r} is given twice (tags ignore case).")
            out[canonical(tag)] = {"title": title, "body": body}
        if not is_locale(default_locale) or canonical(default_locale) not in out:
            raise ValidationFailed("default_locale must be one of the given locales.")
        return canonical(default_locale), out

    async def put(
        self,
        tenant: str,
        type_: str,
        default_locale: str,
        locales: Mapping[str, Mapping[str, str]],
    ) -> tuple[TemplateSet, bool]:
        """Create or replace the type's templates: ``(saved, created)``."""
        default, checked = self.check(type_, default_locale, locales)
        found = TemplateSet(tenant, type_, default, checked, utcnow())
        async with self.store.write() as conn:
            existed = await tq.get(conn, tenant, type_) is not None
            if not existed and await tq.count(conn, tenant) >= self.settings.max_templates:
                raise Conflict(
                    f"This tenant has templates for {self.settings.max_templates} types already.",
                    code=Code.TOO_MANY_TEMPLATES,
                )
            return await tq.put(conn, found), not existed

    async def get(self, tenant: str, type_: str) -> TemplateSet:
        async with self.store.read() as conn:
            found = await tq.get(conn, tenant, type_)
        if found is None:
            raise NotFound(f"No template for type {type_!r}.", code=Code.TEMPLATE_NOT_FOUND)
        return found

    async def all(self, tenant: str) -> list[TemplateSet]:
        async with self.store.read() as conn:
            return await tq.list_for(conn, tenant)

    async def remove(self, tenant: str, type_: str) -> TemplateSet:
        """Forget the type's templates; the ones removed."""
        async with self.store.write() as conn:
            found = await tq.get(conn, tenant, type_)
            if found is None or not await tq.remove(conn, tenant, type_):
                raise NotFound(f"No template for type {type_!r}.", code=Code.TEMPLATE_NOT_FOUND)
        return found

    # -- the publish hook ------------------------------------------------------------------------

    async def apply(
        self, tenant: str, items: Sequence[NewNotification], conn: AsyncConnection | None = None
    ) -> list[NewNotification]:
        """``items`` with every one without a title rendered from its type's templates (read in
        ``conn``, else in a read transaction of its own). No I/O when all have a title."""
        if all(item.title for item in items):
            return list(items)
        wanted = sorted({item.type for item in items if not item.title})
        if conn is None:
            async with self.store.read() as own:
                sets = {t: await tq.get(own, tenant, t) for t in wanted}
        else:
            sets = {t: await tq.get(conn, tenant, t) for t in wanted}
        return [item if item.title else self.render(item, sets[item.type]) for item in items]

    def render(self, new: NewNotification, found: TemplateSet | None) -> NewNotification:
        """``new`` with its text in every locale of ``found``; 422 when it cannot be made."""
        if found is None:
            raise ValidationFailed(
                f"title is required: no template is registered for type {new.type!r}."
            )
        s = self.settings
        texts: dict[str, dict[str, str]] = {}
        for tag, pair in found.locales.items():
            try:
                title, body = Pair.of(pair["title"], pair.get("body")).render(context(new, tag))
            except TemplateProblem as error:
                raise ValidationFailed(
                    f"The {error.field} template of {tag!r} for {new.type!r} failed: "
                    f"{error.message}",
                    code=Code.TEMPLATE_FAILED,
                    extra={"locale": tag, "field": error.field},
                ) from error
            if len(title) > s.max_title_chars or len(body) > s.max_body_chars:
                raise ValidationFailed(
                    f"The {tag!r} text for {new.type!r} is longer than the title "
                    f"({s.max_title_chars}) or body ({s.max_body_chars}) limit.",
                    code=Code.TEMPLATE_FAILED,
                    extra={"locale": tag},
                )
            texts[tag] = {"title": title, "body": body}
        default = texts[found.default_locale]
        if sum(len(t["title"]) + len(t["body"]) for t in texts.values()) > s.max_l10n_chars:
            raise ValidationFailed(
                f"The text of {new.type!r} in all its locales is longer than "
                f"{s.max_l10n_chars} characters together.",
                code=Code.TEMPLATE_FAILED,
            )
        return new.rendered(default["title"], default["body"], texts)
