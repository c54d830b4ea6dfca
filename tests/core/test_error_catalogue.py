"""Errors as data: every problem code tidings answers is a member of ``errors.Code`` (with the
status of the exception that raises it) and is documented in ``docs/problems.md``.

The raise sites are found in the source itself (its syntax tree), so a new ``code=`` anywhere
is checked without touching this file.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import tidings
from tidings import errors
from tidings.errors import Code, TidingsError

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "tidings"
DOC = ROOT / "docs" / "problems.md"


@dataclass(frozen=True)
class Site:
    where: str
    raiser: str | None  # the exception class called (or whose __init__ passes the code)
    code: ast.expr


def _tree() -> dict[str, type[TidingsError]]:
    """Every class of the exception tree, by name (errors.py and its subclasses elsewhere)."""
    for module in pkgutil.walk_packages(tidings.__path__, "tidings."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found: dict[str, type[TidingsError]] = {}
    todo: list[type[TidingsError]] = [TidingsError]
    while todo:
        cls = todo.pop()
        assert found.setdefault(cls.__name__, cls) is cls, f"two error classes {cls.__name__}"
        todo += cls.__subclasses__()
    return found


def _sites() -> Iterator[Site]:
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for cls in [None, *[n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]]:
            scope = tree if cls is None else cls
            for node in ast.walk(scope):
                if not isinstance(node, ast.Call):
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                func = node.func
                name = func.id if isinstance(func, ast.Name) else None
                if isinstance(func, ast.Attribute):
                    name = func.attr
                    if func.attr == "__init__" and cls is not None:
                        name = cls.name  # super().__init__(…, code=…) in a subclass
                for keyword in node.keywords:
                    if keyword.arg == "code":
                        yield Site(where, name, keyword.value)
                if name == "problem" and len(node.args) >= 2:  # problems.problem(status, code…)
                    yield Site(where, None, node.args[1])


def _member(expr: ast.expr) -> Code | None:
    if (
        isinstance(expr, ast.Attribute)
        and isinstance(expr.value, ast.Name)
        and expr.value.id == "Code"
    ):
        return Code[expr.attr]
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return Code(expr.value)  # ValueError: a code that is not catalogued
    return None


def test_every_raised_code_is_catalogued_with_its_status() -> None:
    classes = _tree()
    sites = list(_sites())
    assert len(sites) > 60, "the scan lost the raise sites"
    literal = [
        s.where
        for s in sites
        if s.raiser in classes and isinstance(s.code, ast.Constant) and s.code.value is not None
    ]
    assert not literal, f"code= as a string literal (use errors.Code): {literal}"
    wrong = []
    for site in sites:
        code = _member(site.code)
        if code is None or site.raiser not in classes:
            continue
        if code.status != classes[site.raiser].status:
            wrong.append(f"{site.where}: {site.raiser} ({classes[site.raiser].status}) {code}")
    assert not wrong, f"a code raised by a class of another status: {wrong}"
    for cls in classes.values():
        assert cls.default_code.status == cls.status, cls


def test_problem_literals_are_catalogued() -> None:
    """``problems.problem(status, "code", …)`` outside the tree (middleware) names a Code."""
    for site in _sites():
        if site.raiser is None:
            code = _member(site.code)
            assert code is None or isinstance(code, Code), site.where


def test_uncatalogued_code_is_found() -> None:
    """The scan would notice a literal outside the catalogue."""
    call = ast.parse('NotFound("x", code="no_such_code")').body[0]
    assert isinstance(call, ast.Expr) and isinstance(call.value, ast.Call)
    try:
        _member(call.value.keywords[0].value)
    except ValueError:
        return
    raise AssertionError("an uncatalogued code passed")


def _documented() -> dict[str, tuple[int, str]]:
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \| ([^|]+) \|", DOC.read_text(), re.M)
    return {code: (int(status), title.strip()) for code, status, title in rows}


def test_every_code_is_documented_with_its_status_and_title() -> None:
    documented = _documented()
    assert set(documented) == {str(c) for c in Code}, (
        f"missing from docs/problems.md: {sorted({str(c) for c in Code} - set(documented))}; "
        f"unknown there: {sorted(set(documented) - {str(c) for c in Code})}"
    )
    for code in Code:
        assert documented[code] == (code.status, code.problem_title), code


def test_error_titles_come_from_the_catalogue() -> None:
    error = errors.NotFound("gone", code=Code.TENANT_NOT_FOUND)
    assert (error.status, error.code, error.title) == (404, "tenant_not_found", "Tenant not found")
    assert errors.Unavailable("down").title == Code.STORE_UNAVAILABLE.problem_title
