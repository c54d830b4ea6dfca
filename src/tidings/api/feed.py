"""The user's feed and read state (stream token)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from tidings.api.contract import raises
from tidings.api.deps import ServiceDep, UserDep
from tidings.api.schemas import FeedOut, IdsIn, ReadIn, ReadOut, SnoozeIn, UnreadOut
from tidings.domain.inputs import parse_int
from tidings.domain.locales import localize
from tidings.errors import BadRequest, Code, ValidationFailed

router = APIRouter(prefix="/v1/feed", tags=["feed"])


def encode_cursor(before: int) -> str:
    return base64.urlsafe_b64encode(f"b:{before}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = raw.partition(":")
        before = parse_int(value)
        if prefix != "b" or before is None:
            raise ValueError(raw)
        return before
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise BadRequest(
            "The cursor is not one this server issued.", code=Code.INVALID_CURSOR
        ) from error


@router.get("", response_model=FeedOut, openapi_extra=raises(Code.INVALID_CURSOR))
async def feed(
    principal: UserDep,
    service: ServiceDep,
    status: Literal["unread", "read", "archived", "snoozed", "all"] = "all",
    type: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z][a-z0-9_.]*$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    grouped: bool = False,
) -> dict[str, Any]:
    """Newest first. ``all`` is everything neither archived nor snoozed. ``grouped=true``: one
    item per collapse key (the newest), with ``group_count`` and ``group_unread``. An item
    rendered from templates has its title and body in the token's ``locale`` when it has it."""
    before = decode_cursor(cursor) if cursor else None
    if grouped:
        cards, after = await service.grouped_feed(
            principal, status=status, type_=type, before=before, limit=limit
        )
        return {
            "items": [localize(c.public(), principal.locale) for c in cards],
            "next_cursor": encode_cursor(after) if after is not None else None,
        }
    items, next_before = await service.feed(
        principal, status=status, type_=type, before=before, limit=limit
    )
    return {
        "items": [localize(i.public(), principal.locale) for i in items],
        "next_cursor": encode_cursor(next_before) if next_before is not None else None,
    }


@router.get("/unread-count", response_model=UnreadOut)
async def unread_count(principal: UserDep, service: ServiceDep) -> dict[str, Any]:
    return (await service.unread(principal)).public()


@router.post("/read", response_model=ReadOut, openapi_extra=raises(Code.NOTIFICATION_NOT_FOUND))
async def mark_read(body: ReadIn, principal: UserDep, service: ServiceDep) -> dict[str, Any]:
    """``{"ids": [...]}`` marks those; ``{"groups": [...]}`` every item of those collapse keys
    (the ``read`` event lists their ids); ``{"all": true}`` (optionally ``up_to``) marks all."""
    if [body.all, body.ids is not None, body.groups is not None].count(True) != 1:
        raise ValidationFailed('Send one of {"ids": [...]}, {"groups": [...]} or {"all": true}.')
    if body.up_to is not None and not body.all:
        raise ValidationFailed('up_to goes with {"all": true}.')
    if body.all:
        count = await service.mark_all_read(principal, body.up_to)
    elif body.groups is not None:
        count = await service.mark_groups_read(principal, sorted(set(body.groups)))
    else:
        assert body.ids is not None
        _check_ids(body.ids)
        count = await service.mark_read(principal, sorted(set(body.ids)))
    return {"unread": count.public()}


@router.post("/archive", response_model=ReadOut, openapi_extra=raises(Code.NOTIFICATION_NOT_FOUND))
async def archive(body: IdsIn, principal: UserDep, service: ServiceDep) -> dict[str, Any]:
    _check_ids(body.ids)
    count = await service.archive(principal, sorted(set(body.ids)))
    return {"unread": count.public()}


@router.post("/unread", response_model=ReadOut, openapi_extra=raises(Code.NOTIFICATION_NOT_FOUND))
async def mark_unread(body: IdsIn, principal: UserDep, service: ServiceDep) -> dict[str, Any]:
    """Unread again, whatever the watermark (a snooze on them ends). Event ``unread``."""
    _check_ids(body.ids)
    count = await service.mark_unread(principal, sorted(set(body.ids)))
    return {"unread": count.public()}


@router.post(
    "/unarchive", response_model=ReadOut, openapi_extra=raises(Code.NOTIFICATION_NOT_FOUND)
)
async def unarchive(body: IdsIn, principal: UserDep, service: ServiceDep) -> dict[str, Any]:
    """Back in the inbox (read, as archiving left them). Event ``unarchived``."""
    _check_ids(body.ids)
    count = await service.unarchive(principal, sorted(set(body.ids)))
    return {"unread": count.public()}


@router.post("/snooze", response_model=ReadOut, openapi_extra=raises(Code.NOTIFICATION_NOT_FOUND))
async def snooze(body: SnoozeIn, principal: UserDep, service: ServiceDep) -> dict[str, Any]:
    """Out of the inbox and the count until ``until``; then back, unread (event
    ``unsnoozed``, a push if the user has no live stream). Event ``snoozed`` now."""
    _check_ids(body.ids)
    count = await service.snooze(principal, sorted(set(body.ids)), body.until)
    return {"unread": count.public()}


def _check_ids(ids: list[int]) -> None:
    bad = [i for i in ids if i < 1 or i > 2**62]
    if bad:
        raise ValidationFailed(f"ids are positive integers; got {bad[:5]}.")
