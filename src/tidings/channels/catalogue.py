"""The digest e-mail's message catalogue: every string of the e-mail per locale (English,
German, Spanish), type labels included.

Invariants: every locale has every key of English, with the same ``{placeholders}``
(checked by the tests); an unknown or unsupported locale falls back by language
(``de-AT`` -> ``de``) and then to English; a type without a label gets one made from its name.

A tenant may override any string per locale (``PUT /v1/tenant/messages/{locale}``, issue 10
item 5), even for a locale the catalogue does not ship: :func:`check_overrides` accepts only
known keys (and ``type.<any type>``), each with at most the English string's placeholders,
written ``{name}`` (no attribute, index, conversion or format spec), so an override can neither
fail nor grow at ``format`` time. The overrides of the user's locale (exact tag, else its
language) lie over the catalogue's strings key by key.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

from tidings.domain.locales import pick
from tidings.domain.notifications import TYPE_PATTERN

DEFAULT = "en"
LOCALE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}$"

CATALOGUES: Mapping[str, Mapping[str, str]] = {
    "en": {
        "subject.one": "1 unread notification — {tenant}",
        "subject.other": "{count} unread notifications — {tenant}",
        "intro.one": "You have 1 unread notification at {tenant}.",
        "intro.other": "You have {count} unread notifications at {tenant}.",
        "more": "…and more in your inbox.",
        "open": "Open your notifications",
        "why": "You get this e-mail because digests are on for {address}.",
        "unsubscribe": "Unsubscribe",
        "type.booking_created": "Booking created",
        "type.booking_confirmed": "Booking confirmed",
        "type.booking_cancelled": "Booking cancelled",
        "type.booking_completed": "Booking completed",
        "type.booking_no_show": "Booking no show",
        "type.payment_received": "Payment received",
        "type.payment_failed": "Payment failed",
        "type.reminder": "Reminder",
        "type.customer_created": "Customer created",
        "type.system": "System",
    },
    "de": {
        "subject.one": "1 ungelesene Benachrichtigung — {tenant}",
        "subject.other": "{count} ungelesene Benachrichtigungen — {tenant}",
        "intro.one": "Sie haben 1 ungelesene Benachrichtigung bei {tenant}.",
        "intro.other": "Sie haben {count} ungelesene Benachrichtigungen bei {tenant}.",
        "more": "…und weitere in Ihrem Posteingang.",
        "open": "Benachrichtigungen öffnen",
        "why": "Sie erhalten diese E-Mail, weil Zusammenfassungen für {address} aktiviert sind.",
        "unsubscribe": "Abmelden",
        "type.booking_created": "Neue Buchung",
        "type.booking_confirmed": "Buchung bestätigt",
        "type.booking_cancelled": "Buchung storniert",
        "type.booking_completed": "Buchung abgeschlossen",
        "type.booking_no_show": "Nicht erschienen",
        "type.payment_received": "Zahlung erhalten",
        "type.payment_failed": "Zahlung fehlgeschlagen",
        "type.reminder": "Erinnerung",
        "type.customer_created": "Neuer Kunde",
        "type.system": "System",
    },
    "es": {
        "subject.one": "1 notificación sin leer — {tenant}",
        "subject.other": "{count} notificaciones sin leer — {tenant}",
        "intro.one": "Tienes 1 notificación sin leer en {tenant}.",
        "intro.other": "Tienes {count} notificaciones sin leer en {tenant}.",
        "more": "…y más en tu bandeja de entrada.",
        "open": "Abrir tus notificaciones",
        "why": "Recibes este correo porque los resúmenes están activados para {address}.",
        "unsubscribe": "Darse de baja",
        "type.booking_created": "Reserva creada",
        "type.booking_confirmed": "Reserva confirmada",
        "type.booking_cancelled": "Reserva cancelada",
        "type.booking_completed": "Reserva completada",
        "type.booking_no_show": "No se presentó",
        "type.payment_received": "Pago recibido",
        "type.payment_failed": "Pago fallido",
        "type.reminder": "Recordatorio",
        "type.customer_created": "Cliente creado",
        "type.system": "Sistema",
    },
}

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def placeholders(text: str) -> frozenset[str]:
    return frozenset(_PLACEHOLDER.findall(text))


def resolve(locale: str | None) -> str:
    """The supported locale for a requested tag: exact, then by language, else English."""
    if not locale:
        return DEFAULT
    tag = locale.replace("_", "-").lower()
    if tag in CATALOGUES:
        return tag
    language = tag.split("-", 1)[0]
    return language if language in CATALOGUES else DEFAULT


MAX_OVERRIDE_CHARS = 500
MAX_OVERRIDES = 300  # keys per locale


def check_overrides(messages: Mapping[str, str]) -> dict[str, str]:
    """``messages`` if every key is a catalogue key (or ``type.<type>``) and every text uses
    only that key's English placeholders as plain ``{name}``; ``ValueError`` otherwise."""
    if len(messages) > MAX_OVERRIDES:
        raise ValueError(f"at most {MAX_OVERRIDES} strings per locale")
    english = CATALOGUES[DEFAULT]
    for key, text in messages.items():
        if key.startswith("type.") and TYPE_PATTERN.match(key[5:]):
            allowed: frozenset[str] = frozenset()
        elif key in english:
            allowed = placeholders(english[key])
        else:
            raise ValueError(f"{key!r} is not a string of the digest (see GET /v1/tenant/messages)")
        if not text.strip() or len(text) > MAX_OVERRIDE_CHARS:
            raise ValueError(f"{key!r}: 1 to {MAX_OVERRIDE_CHARS} characters, not blank")
        try:
            fields = list(string.Formatter().parse(text))
        except ValueError as error:
            raise ValueError(f"{key!r}: {error} (write a brace as {{{{ or }}}})") from error
        for _, name, spec, conversion in fields:
            if name is None:
                continue
            if name not in allowed or spec or conversion:
                raise ValueError(
                    f"{key!r}: {{{name}}} is not one of its placeholders "
                    f"{sorted('{' + p + '}' for p in allowed)} (plain, no format spec)"
                )
    return dict(messages)


class Messages:
    """The strings of one locale (falling back to English key by key), with a tenant's
    ``overrides`` (``{locale: {key: text}}``) of that locale over them."""

    def __init__(
        self, locale: str | None, overrides: Mapping[str, Mapping[str, str]] | None = None
    ) -> None:
        self.locale = resolve(locale)
        self._own = CATALOGUES[self.locale]
        self._tenant: Mapping[str, str] = pick(overrides or {}, locale or DEFAULT) or {}
        if self._tenant and locale and resolve(locale) != locale.split("-")[0].lower():
            self.locale = locale.split("-")[0].lower()  # a language only the tenant speaks

    def _text(self, key: str) -> str | None:
        return self._tenant.get(key) or self._own.get(key) or CATALOGUES[DEFAULT].get(key)

    def __call__(self, key: str, **values: object) -> str:
        text = self._text(key)
        assert text is not None, key
        return text.format(**values)

    def counted(self, key: str, one: bool, count: str, **values: object) -> str:
        """``key.one`` when ``one`` (exactly one thing), else ``key.other`` with ``count``."""
        return self(f"{key}.one" if one else f"{key}.other", count=count, **values)

    def type_label(self, type_: str) -> str:
        found = self._text(f"type.{type_}")
        if found:
            return found
        return type_.replace(".", " ").replace("_", " ").strip().capitalize()
