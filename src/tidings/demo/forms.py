"""Reading a posted form: its string fields, each storable text (no NUL, no lone surrogate —
:func:`tidings.domain.inputs.text_problem`), else a 422 before anything reads or stores it."""

from __future__ import annotations

from starlette.requests import Request

from tidings.domain.inputs import text_problem
from tidings.errors import ValidationFailed


async def read_form(request: Request) -> dict[str, str]:
    """The form's string fields (uploads are ignored: no demo form takes a file)."""
    fields = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    for name, value in fields.items():
        problem = text_problem(name) or text_problem(value)
        if problem:
            raise ValidationFailed(f"Form field {name[:40]!r}: text {problem}.")
    return fields
