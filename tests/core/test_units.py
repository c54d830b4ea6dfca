"""Small pure pieces: SSE framing, settings, the error tree, the public surface."""

from __future__ import annotations

import pytest

import tidings
from tidings import errors
from tidings.config import Settings
from tidings.delivery import sse
from tidings.delivery.broker import Envelope
from tidings.domain.notifications import NewNotification, is_safe_link


def test_frames_are_one_line_json_and_closed_names() -> None:
    evil = {"title": "x\n\nevent: reset\ndata: {}\n\n"}
    frame = sse.frame("notification", evil, 3)
    assert frame.count(b"\n\n") == 1 and frame.startswith(b"id: 3\nevent: notification\n")
    with pytest.raises(ValueError, match="unknown"):
        sse.frame("evil", {})
    with pytest.raises(ValueError, match="one line"):
        sse.frame("ready", b"a\nb")


def test_notification_encoding_cannot_forge_framing() -> None:
    n = NewNotification(type="system", title="line1\r\nid: 99\n\nevent: reset")
    from tidings.domain.notifications import Notification, utcnow

    stored = Notification("t", 1, n.type, n.title, n.body, {}, None, None, utcnow())
    assert b"\n" not in stored.encode() and b"\r" not in stored.encode()


@pytest.mark.parametrize(
    ("link", "ok"),
    [
        ("/bookings/7", True),
        ("https://x.example/a", True),
        ("http://x.example", True),
        ("//evil.example", False),
        ("javascript:alert(1)", False),
        ("JaVaScRiPt:alert(1)", False),
        (" javascript:alert(1)", False),
        ("data:text/html,x", False),
        ("/\\evil.example", False),
        ("https:///nohost", False),
    ],
)
def test_safe_links(link: str, ok: bool) -> None:
    assert is_safe_link(link) is ok


def test_envelope_round_trip() -> None:
    e = Envelope("n", "jump-joy", 42, payload=b'{"a":"\\n"}', origin="abc")
    assert Envelope.decode(e.encode()) == e


def test_settings_mask_secrets() -> None:
    s = Settings(database_url="postgresql+asyncpg://u:pw@db/t", secret="s" * 40)
    masked = s.masked()
    assert (
        masked["secret"] == "**********"
        and masked["database_url"] == "postgresql+asyncpg://u:****@db/t"
    )


def test_every_error_has_a_status_and_code() -> None:
    classes = [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.TidingsError)
    ]
    assert len(classes) >= 10
    for cls in classes:
        assert 400 <= cls.status <= 599 and cls.default_code.status == cls.status


def test_public_surface_is_complete_and_sorted() -> None:
    assert tidings.__all__ == sorted(tidings.__all__)
    for name in tidings.__all__:
        assert hasattr(tidings, name)
