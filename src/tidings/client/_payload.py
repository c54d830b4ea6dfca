"""A notification as ``POST /v1/notifications`` takes it, checked here without the server.

The outbox helpers (:mod:`._outbox`) write a payload into the host's database, where nobody
answers 422: a payload tidings would refuse ends in ``tidings_outbox_dead``. So the rules the
server applies to every notification (``tidings.domain.notifications.NewNotification``) are
applied here first, in plain Python (the SDK imports no pydantic), and a bad notification is a
:class:`ValueError` in the caller's code, before its transaction commits:

- ``type``: 1-64 of ``a-z 0-9 _ .``, starting with a letter; ``group`` likewise (1-128, plus
  ``:`` and ``-``); ``title`` not blank (at most 10,000 characters), ``body`` at most 100,000;
- ``link``: an ``http(s)://`` URL with a host, or a same-site path (``/x``, not ``//x``);
- ``audience``: ``users`` (at most 1,000) and/or ``roles`` (at most 100), ids of 1-128 of
  ``A-Z a-z 0-9 _ . @ : + -``, at least one of them; ``actor`` an id or ``{"id", "name"}``;
- ``data``: a JSON object: string keys, finite numbers, whole numbers within 64 bits (also
  floats such as ``1e300``: ``jsonb`` keeps them as integers, which tidings then reads), at
  most 200 levels deep; no string anywhere holds NUL or a lone UTF-16 surrogate.

and the limits the operator sets (:class:`NotificationLimits`: tidings' defaults unless told
otherwise): title and body length, the encoded size of ``data``, users + roles named.

``tests/sdk/test_outbox.py`` keeps these rules equal to the server's: a table of cases is put
into a real outbox and what tidings' consumer moves to ``tidings_outbox_dead`` must be exactly
what this module (and ``outboxRow`` of js/server.js) refuses.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

__all__ = ["NotificationLimits", "notification_payload"]

TYPE = re.compile(r"[a-z][a-z0-9_.]{0,63}")
GROUP = re.compile(r"[a-z][a-z0-9_.:\-]{0,127}")
ID = re.compile(r"[A-Za-z0-9_.@:+\-]{1,128}")
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
MAX_TITLE = 10_000
MAX_BODY = 100_000
MAX_LINK = 2048
MAX_USERS = 1000
MAX_ROLES = 100
MAX_NAME = 200
MAX_DEPTH = 200  # levels of objects and arrays in data, data itself included
_INT_RANGE = (-(2**63), 2**64 - 1)  # what the server's JSON encoder takes


@dataclass(frozen=True, slots=True)
class NotificationLimits:
    """The limits a tidings server applies to each notification; the defaults are tidings'
    own. Pass the server's when its operator changed ``TIDINGS_MAX_TITLE_CHARS``,
    ``TIDINGS_MAX_BODY_CHARS``, ``TIDINGS_MAX_DATA_BYTES`` or ``TIDINGS_MAX_AUDIENCE_TARGETS``."""

    title_chars: int = 200
    body_chars: int = 2000
    data_bytes: int = 8192
    """The size of ``data`` as compact UTF-8 JSON."""
    audience_targets: int = 1000
    """Distinct users plus roles one audience names."""


def _text(value: object, field: str, *, maximum: int) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string, not {type(value).__name__}")
    if len(value) > maximum:
        raise ValueError(f"{field} is longer than {maximum} characters")
    _clean(value, field)
    return value


def _clean(value: str, field: str) -> None:
    found = _BAD_TEXT.search(value)
    if found:
        what = "NUL" if found.group() == "\x00" else "an unpaired UTF-16 surrogate"
        raise ValueError(f"{field} holds {what}, which tidings cannot store")


def _json(value: object, field: str, depth: int) -> Any:
    """``value`` as plain JSON data (lists, dicts, str, int, float, bool, None)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        _clean(value, field)
        return value
    if isinstance(value, int):
        if not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
            raise ValueError(f"{field} is an integer beyond 64 bits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{field} is NaN or infinite, which JSON cannot represent")
        # jsonb keeps 1e+300 as the integer 1000…0: tidings reads it back as one.
        if value.is_integer() and not _INT_RANGE[0] <= int(Decimal(repr(value))) <= _INT_RANGE[1]:
            raise ValueError(f"{field} is a whole number beyond 64 bits (jsonb stores it so)")
        return value
    if depth >= MAX_DEPTH:
        raise ValueError(f"data is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{field} has a key that is not a string: {key!r}")
            _clean(key, f"a key of {field}")
            out[key] = _json(item, f"{field}.{key}", depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_json(item, f"{field}[{i}]", depth + 1) for i, item in enumerate(value)]
    raise ValueError(f"{field} is a {type(value).__name__}, which is not JSON")


def _ids(value: object, field: str, maximum: int) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"{field} must be a list of ids")
    if len(value) > maximum:
        raise ValueError(f"{field} names more than {maximum}")
    for item in value:
        if not isinstance(item, str) or not ID.fullmatch(item):
            raise ValueError(
                f"{field}: {item!r} is not a valid id (1-128 of A-Z a-z 0-9 _ . @ : + -)"
            )
    return list(dict.fromkeys(value))


def _audience(value: Mapping[str, Any]) -> dict[str, list[str]]:
    if not isinstance(value, Mapping):
        raise ValueError("audience must be {'users': [...], 'roles': [...]}")
    extra = set(value) - {"users", "roles"}
    if extra:
        raise ValueError(f"audience has unknown fields: {sorted(extra)}")
    out = {
        name: _ids(value[name], f"audience.{name}", cap)
        for name, cap in (("users", MAX_USERS), ("roles", MAX_ROLES))
        if name in value
    }
    if not any(out.values()):
        raise ValueError("an audience names at least one user or role; omit it for everyone")
    return out


def _actor(value: str | Mapping[str, Any]) -> dict[str, Any]:
    actor = {"id": value} if isinstance(value, str) else value
    if not isinstance(actor, Mapping):
        raise ValueError("actor must be a user id or {'id': ..., 'name': ...}")
    extra = set(actor) - {"id", "name"}
    if extra:
        raise ValueError(f"actor has unknown fields: {sorted(extra)}")
    ident = actor.get("id")
    if not isinstance(ident, str) or not ID.fullmatch(ident):
        raise ValueError(
            f"actor.id: {ident!r} is not a valid id (1-128 of A-Z a-z 0-9 _ . @ : + -)"
        )
    name = actor.get("name")
    if name is not None:
        _text(name, "actor.name", maximum=MAX_NAME)
    return {"id": ident, "name": name}


def _link(value: str) -> str | None:
    _text(value, "link", maximum=MAX_LINK)
    if value == "":
        return None
    if any(ord(ch) < 0x21 for ch in value):
        ok = False
    elif value.startswith("/"):
        ok = not value.startswith(("//", "/\\"))
    else:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.netloc)
    if not ok:
        raise ValueError("link must be an http(s) URL or a path starting with '/'")
    return value


def notification_payload(
    type: str,
    title: str,
    *,
    body: str = "",
    data: Mapping[str, Any] | None = None,
    link: str | None = None,
    audience: Mapping[str, Sequence[str]] | None = None,
    actor: str | Mapping[str, Any] | None = None,
    group: str | None = None,
    limits: NotificationLimits = NotificationLimits(),
) -> dict[str, Any]:
    """The JSON object of ``POST /v1/notifications`` for these fields, or ``ValueError`` saying
    what tidings would refuse. Optional fields that are ``None`` are left out."""
    if not isinstance(type, str) or not TYPE.fullmatch(type):
        raise ValueError(
            f"type {type!r}: 1-64 lower-case letters, digits, '_' and '.', starting with a letter"
        )
    _text(title, "title", maximum=MAX_TITLE)
    if not title.strip():
        raise ValueError("title must not be blank")
    if len(title) > limits.title_chars:
        raise ValueError(f"title is longer than {limits.title_chars} characters")
    payload: dict[str, Any] = {
        "type": type,
        "title": title,
        "body": _text(body, "body", maximum=min(MAX_BODY, limits.body_chars)),
        "data": {},
    }
    if data is not None:
        if not isinstance(data, Mapping):
            raise ValueError("data must be a JSON object (a dict)")
        payload["data"] = _json(data, "data", 0)
        size = len(json.dumps(payload["data"], ensure_ascii=False, separators=(",", ":")).encode())
        if size > limits.data_bytes:
            raise ValueError(
                f"data is {size} bytes encoded; at most {limits.data_bytes} are accepted"
            )
    if link is not None and _link(link) is not None:
        payload["link"] = link
    if audience is not None:
        payload["audience"] = _audience(audience)
        named = sum(len(ids) for ids in payload["audience"].values())
        if named > limits.audience_targets:
            raise ValueError(
                f"the audience names {named} users and roles; at most "
                f"{limits.audience_targets} are accepted"
            )
    if actor is not None:
        payload["actor"] = _actor(actor)
    if group is not None:
        if not isinstance(group, str) or not GROUP.fullmatch(group):
            raise ValueError(
                f"group {group!r}: 1-128 of lower-case letters, digits, '_', '.', ':' and '-', "
                "starting with a letter"
            )
        payload["group"] = group
    return payload
