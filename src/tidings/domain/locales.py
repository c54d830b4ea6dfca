"""Locales (BCP 47 language tags) and picking a notification's text for one (issue 10 item 5).

A notification published from a per-type template carries its text in every locale the type
has a template for: ``title``/``body`` in the template's default locale, and every locale
(the default's too) in ``l10n`` (``{"en": {"title": …, "body": …}, "de": {…}}``). Each
reader picks by its own locale: the bell by its ``locale`` attribute, the feed by the token's
``locale`` claim, push and the digest by the user's profile locale.

Invariants:
- a tag is 2-3 letters, then up to four ``-`` subtags of 1-8 letters or digits (no newline or
  control character can reach a log line or a header); it is kept in its canonical case
  (``de-AT``, ``zh-Hant-TW``), compared without regard to case;
- :func:`pick` tries the exact tag, then its language (``de-AT`` → ``de``), then any variant of
  that language (``en`` → ``en-US``); nothing found means the default text (``title``/``body``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

LOCALE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}$"
"""For pydantic fields and JSON Schema (their regex engine: ``$`` is the end of the text)."""
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}\Z")  # Python's "$" admits "\n"
T = TypeVar("T")


def is_locale(tag: str) -> bool:
    return bool(_LOCALE.match(tag))


def canonical(tag: str) -> str:
    """``tag`` (a valid locale) in canonical case: language lower, script title, region upper."""
    head, *rest = tag.replace("_", "-").split("-")
    out = [head.lower()]
    for part in rest:
        if len(part) == 2 and part.isalpha():
            out.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            out.append(part.title())
        else:
            out.append(part.lower())
    return "-".join(out)


def pick(variants: Mapping[str, T], locale: str | None) -> T | None:
    """The variant for ``locale``: exact tag, its language, another tag of that language."""
    if not variants or not locale:
        return None
    wanted = locale.replace("_", "-").lower()
    lowered = {tag.lower(): value for tag, value in variants.items()}
    if wanted in lowered:
        return lowered[wanted]
    language = wanted.split("-", 1)[0]
    if language in lowered:
        return lowered[language]
    for tag in sorted(lowered):
        if tag.split("-", 1)[0] == language:
            return lowered[tag]
    return None


def localize(public: dict[str, Any], locale: str | None) -> dict[str, Any]:
    """A notification's public form with ``title``/``body`` in ``locale`` when it has them
    (``l10n`` stays, so a client may pick another); else ``public`` itself."""
    variants = public.get("l10n")
    chosen = pick(variants, locale) if isinstance(variants, dict) else None
    if not isinstance(chosen, dict):
        return public
    return {**public, "title": chosen.get("title", public["title"]), "body": chosen.get("body", "")}
