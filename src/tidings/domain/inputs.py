"""Rules every input obeys, whatever route it comes through (invariant 6: bad input is a 4xx).

One rule per class of input that a store or an encoder cannot hold, applied where input is
parsed, so no route can forget it:

- **Text** (:class:`StrictModel`): no string anywhere in a request model — fields, list items,
  keys and values inside ``data`` — may hold NUL (PostgreSQL ``text`` and ``jsonb`` cannot
  store it) or a lone UTF-16 surrogate (not encodable as UTF-8, so neither storable nor
  sendable). Every request model derives from :class:`StrictModel`.
- **Integers from text** (:func:`parse_int`): ids, cursors and ``Last-Event-ID`` are ASCII
  digits only (``str.isdigit`` and ``int`` also accept ``²``, ``①``, ``٣``) and fit the store's
  ``BIGINT`` (at most ``2**63 - 1``). Integers in bodies use :data:`StoreInt`; path ids are
  bounded by their column (:data:`MAX_INT`, :data:`MAX_SERIAL`).
- **JSON objects** (:data:`JsonObject`): a value is accepted only if the encoder that later sends
  it (orjson) encodes it — which refuses nesting deeper than it supports, lone surrogates and
  integers beyond 64 bits — and it holds only finite numbers (``NaN``/``Infinity`` are not JSON;
  PostgreSQL refuses them).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BaseModel, Field, ValidationInfo, field_validator

MAX_INT = 2**63 - 1
"""The largest integer the store holds (``BIGINT``: seqs)."""
MAX_SERIAL = 2**31 - 1
"""The largest id of an ``INTEGER`` serial column (push subscriptions, demo rows)."""

_ASCII_UINT = re.compile(r"[0-9]{1,19}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_SCALARS = frozenset({int, float, bool})


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored and sent as text, or ``None`` when it can."""
    if "\x00" in value:
        return "must not contain the NUL character (\\u0000)"
    if _LONE_SURROGATE.search(value):
        return "must not contain unpaired UTF-16 surrogates (\\ud800-\\udfff)"
    return None


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""What :func:`text_problem` refuses, in one search (the common case: nothing found)."""


def _check_strings(value: Any) -> None:
    """Raise ``ValueError`` if any string in ``value`` (nested lists, tuples, sets and dicts,
    keys included) fails :func:`text_problem`."""
    if value is None or type(value) in _SCALARS:
        return
    if type(value) is str and not _UNSTORABLE.search(value):
        return
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                raise ValueError(f"text {problem}")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)


TEXT_CHECKED = "tidings.text_checked"
"""Validation context key: ``True`` when the caller has shown that no string in the input can
fail :func:`text_problem` (:func:`json_text_storable` on the JSON it was decoded from), so the
per-field walk is skipped; the outcome is the same, since it could not fail."""

_UNSTORABLE_JSON = re.compile(rb"\x00|\\u(?:0000|[dD][89a-fA-F])|\xed[\xa0-\xbf]")
"""In a JSON document's bytes: a NUL byte (also every UTF-16/32 document), an escaped NUL or
UTF-16 surrogate (``\\u0000``, ``\\ud800``-``\\udfff``, any case), or a surrogate encoded as
UTF-8 (which the stdlib's ``json.loads`` decodes with ``surrogatepass``)."""


def json_text_storable(document: bytes) -> bool:
    """True when no string that ``json.loads(document)`` can produce fails
    :func:`text_problem`: one search of the bytes instead of a walk of every decoded string.
    False positives (an escaped backslash before ``u0000``) only mean the walk is done."""
    return _UNSTORABLE_JSON.search(document) is None


class StrictModel(BaseModel):
    """Base of every request model: each field's strings obey :func:`text_problem` (422)."""

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any, info: ValidationInfo) -> Any:
        context = info.context
        if context is None or not context.get(TEXT_CHECKED):
            _check_strings(value)
        return value


def parse_int(raw: str, *, maximum: int = MAX_INT) -> int | None:
    """``raw`` as a non-negative integer if it is 1-19 ASCII digits and at most ``maximum``,
    else ``None``. The one parser for integers that arrive as text (ids, cursors, resume
    points)."""
    if not _ASCII_UINT.fullmatch(raw):
        return None
    number = int(raw)
    return number if number <= maximum else None


StoreInt = Annotated[int, Field(ge=0, le=MAX_INT)]
"""A non-negative integer the store can hold (a seq, an id)."""


def check_json_object(value: dict[str, Any]) -> dict[str, Any]:
    """Accept ``value`` only if orjson encodes it and every number in it is finite."""
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError as error:
        raise ValueError(f"is not encodable as JSON ({error})") from error
    stack: list[Any] = [value]  # encodable, so at most orjson's depth: no unbounded walk
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("holds NaN or Infinity, which JSON cannot represent")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(check_json_object)]
"""A JSON object that can be stored and sent as is."""
