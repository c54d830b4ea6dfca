"""Digest e-mails: composing them (plain text + HTML, RFC 8058 unsubscribe headers) and sending
them over SMTP with ``aiosmtplib`` (host, port, TLS mode and credentials from settings).

Every piece of notification text reaches the HTML through Jinja2 autoescaping; links are made
absolute against ``TIDINGS_PUBLIC_URL`` and only ``http(s)`` links are used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from urllib.parse import urljoin, urlsplit

import aiosmtplib
from jinja2 import Environment

from tidings.channels.catalogue import Messages
from tidings.config import Settings
from tidings.domain.locales import pick
from tidings.domain.notifications import Notification

_HTML_ENV = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
# Plain text is not HTML: escaping it would show "&amp;" to the reader.
_TEXT_ENV = Environment(autoescape=False, trim_blocks=True, lstrip_blocks=True)  # noqa: S701

_TEXT = _TEXT_ENV.from_string(
    """{{ intro }}

{% for group in groups %}
{{ group.label }} ({{ group.items|length }})
{% for item in group.items %}
  - {{ item.title }}{% if item.body %}: {{ item.body }}{% endif %}

    {{ item.url }}
{% endfor %}

{% endfor %}
{% if more %}{{ t.more }}
{% endif %}
{{ t.open }}: {{ dashboard }}

{{ t.why }}
{{ t.unsubscribe }}: {{ unsubscribe }}
""",
)

_HTML = _HTML_ENV.from_string(
    """<!doctype html>
<html lang="{{ lang }}">
<body style="font-family:system-ui,sans-serif;color:#1f2937;max-width:560px">
<p>{{ intro }}</p>
{% for group in groups %}
<h3 style="margin:20px 0 6px">{{ group.label }}
 <span style="color:#6b7280">({{ group.items|length }})</span></h3>
<ul style="padding-left:18px;margin:0">
{% for item in group.items %}
<li style="margin:6px 0"><a href="{{ item.url }}">{{ item.title }}</a>
{% if item.body %}<br><span style="color:#4b5563">{{ item.body }}</span>{% endif %}</li>
{% endfor %}
</ul>
{% endfor %}
{% if more %}<p>{{ t.more }}</p>{% endif %}
<p><a href="{{ dashboard }}">{{ t.open }}</a></p>
<p style="color:#6b7280;font-size:12px">
{{ t.why }}
<a href="{{ unsubscribe }}">{{ t.unsubscribe }}</a></p>
</body></html>
""",
)


@dataclass(frozen=True, slots=True)
class Item:
    title: str
    body: str
    url: str


@dataclass(frozen=True, slots=True)
class Group:
    label: str
    items: list[Item]


def _domain(address: str) -> str:
    _, addr = parseaddr(address)
    domain = addr.rpartition("@")[2]
    return domain or "tidings.invalid"


def absolute(public_url: str, link: str | None) -> str:
    if not link:
        return public_url
    url = urljoin(public_url.rstrip("/") + "/", link)
    return url if urlsplit(url).scheme in ("http", "https") else public_url


def group(
    items: list[Notification],
    public_url: str,
    messages: Messages | None = None,
    locale: str | None = None,
) -> list[Group]:
    """Grouped by type, groups in order of their newest item, items newest first; an item
    rendered from templates in ``locale`` when it has it (issue 10)."""
    words = messages or Messages(None)
    by_type: dict[str, list[Item]] = {}
    for n in sorted(items, key=lambda n: n.seq, reverse=True):
        text = pick(n.l10n or {}, locale) or {"title": n.title, "body": n.body}
        by_type.setdefault(n.type, []).append(
            Item(text["title"], text["body"][:300], absolute(public_url, n.link))
        )
    return [Group(words.type_label(t), entries) for t, entries in by_type.items()]


def digest_message(
    settings: Settings,
    *,
    to: str,
    tenant_name: str,
    items: list[Notification],
    more: bool,
    unsubscribe: str,
    message_key: str,
    now: datetime,
    locale: str | None = None,
    overrides: Mapping[str, Mapping[str, str]] | None = None,
) -> EmailMessage:
    """The digest e-mail in ``locale`` (see :mod:`tidings.channels.catalogue`; English when
    absent or unsupported), with the tenant's ``overrides`` (``{locale: {key: text}}``) of the
    catalogue's strings."""
    words = Messages(locale, overrides)
    count = f"{len(items)}{'+' if more else ''}"
    one = len(items) == 1 and not more
    context = {
        "lang": words.locale,
        "intro": words.counted("intro", one, count, tenant=tenant_name),
        "t": {
            "more": words("more"),
            "open": words("open"),
            "why": words("why", address=to),
            "unsubscribe": words("unsubscribe"),
        },
        "groups": group(items, settings.public_url, words, locale),
        "more": more,
        "dashboard": settings.public_url,
        "unsubscribe": unsubscribe,
        "address": to,
    }
    message = EmailMessage()
    message["Subject"] = words.counted("subject", one, count, tenant=tenant_name)
    message["From"] = settings.smtp_from
    message["To"] = formataddr(("", to))
    message["Date"] = format_datetime(now)
    # The same digest always has the same Message-ID: a re-send after a crash is a duplicate
    # that mail systems can recognise.
    digest = hashlib.sha256(message_key.encode()).hexdigest()[:32]
    message["Message-ID"] = f"<digest.{digest}@{_domain(settings.smtp_from)}>"
    message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(_TEXT.render(context))
    message.add_alternative(_HTML.render(context), subtype="html")
    return message


async def send(message: EmailMessage, settings: Settings) -> None:
    """Hand ``message`` to the SMTP server; raises on any failure (the caller retries)."""
    password = settings.smtp_password.get_secret_value()
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username or None,
        password=password if settings.smtp_username else None,
        use_tls=settings.smtp_tls == "tls",
        start_tls=settings.smtp_tls == "starttls",
        timeout=settings.smtp_timeout,
    )
