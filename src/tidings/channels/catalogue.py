"""The digest e-mail's message catalogue: every string of the e-mail per locale (English,
German, Spanish), type labels included.

Invariants: every locale has every key of English, with the same ``{placeholders}``
(checked by the tests); an unknown or unsupported locale falls back by language
(``de-AT`` -> ``de``) and then to English; a type without a label gets one made from its name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

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


class Messages:
    """The strings of one locale (falling back to English key by key)."""

    def __init__(self, locale: str | None) -> None:
        self.locale = resolve(locale)
        self._own = CATALOGUES[self.locale]

    def __call__(self, key: str, **values: object) -> str:
        text = self._own.get(key) or CATALOGUES[DEFAULT][key]
        return text.format(**values)

    def counted(self, key: str, one: bool, count: str, **values: object) -> str:
        """``key.one`` when ``one`` (exactly one thing), else ``key.other`` with ``count``."""
        return self(f"{key}.one" if one else f"{key}.other", count=count, **values)

    def type_label(self, type_: str) -> str:
        found = self._own.get(f"type.{type_}") or CATALOGUES[DEFAULT].get(f"type.{type_}")
        if found:
            return found
        return type_.replace(".", " ").replace("_", " ").strip().capitalize()
