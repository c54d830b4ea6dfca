"""Per-type notification templates (issue 10 item 5): Jinja in a sandbox with bounded work.

A tenant registers, for a notification type, a ``title`` and a ``body`` template per locale; a
publish that sends ``type`` + ``data`` without a title is rendered from them. The author is a
tenant and the data is whatever its publishers send, so a template may only compute text:

- **Sandbox** (:class:`jinja2.sandbox.SandboxedEnvironment`): no attribute or key starting with
  ``_`` (``__class__``, ``__globals__``…: refused at registration when written literally, empty
  when reached dynamically), no ``import``/``include``/``extends``, only methods of
  :data:`SAFE_METHODS` on strings, lists and dicts, only the filters of :data:`FILTERS`.
- **Bounded work**: every loop step and every call costs one unit of a per-render budget
  (:data:`BUDGET`); ``range`` yields at most :data:`MAX_RANGE` numbers; ``*``, ``+`` and ``~``
  never build a string or list longer than :data:`MAX_VALUE`; ``%`` formatting and ``**`` with a
  large exponent are refused; the output stops at :data:`MAX_OUTPUT` characters; recursive
  loops are refused at registration.
- **Plain text**: titles and bodies are text, not HTML (the bell sets ``textContent``, the digest
  e-mail escapes them), so nothing is escaped here (``autoescape`` off): escaping would show
  ``&amp;`` to the reader.

Everything that goes wrong raises :class:`TemplateProblem` (a ``ValueError``): the service turns
it into a 422 problem, at registration (syntax) or at publish (rendering).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, Template, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from jinja2.visitor import NodeTransformer

BUDGET = 10_000  # loop steps + calls per render
MAX_RANGE = 1_000
MAX_VALUE = 20_000  # characters (or items) of a string or list built by an operator
MAX_OUTPUT = 100_000  # characters of a rendered template (the settings' limits apply after)
MAX_SOURCE = {"title": 2_000, "body": 20_000}

FILTERS = frozenset(
    {
        "abs", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first",
        "float", "int", "items", "join", "last", "length", "list", "lower", "map", "max",
        "min", "reject", "rejectattr", "reverse", "round", "select", "selectattr", "sort",
        "string", "striptags", "sum", "title", "tojson", "trim", "truncate", "unique", "upper",
        "urlencode", "wordcount",
    }
)  # fmt: skip
"""Filters a template may use: none builds more than its input (``center``, ``indent``,
``format``, ``batch``, ``replace``, ``wordwrap``… could be asked for gigabytes)."""

SAFE_METHODS = frozenset(
    {
        "capitalize", "casefold", "endswith", "get", "isdigit", "items", "keys", "lower",
        "lstrip", "rstrip", "split", "startswith", "strip", "title", "upper", "values",
    }
)  # fmt: skip
"""Methods callable on strings, lists and dicts (``"x".center(10**9)`` is not one)."""


class TemplateProblem(ValueError):
    """A template that cannot be registered, or a render that failed (``field``: which one)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class _Budget:
    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left


_budget: ContextVar[_Budget | None] = ContextVar("tidings_template_budget", default=None)


def _spend() -> None:
    budget = _budget.get()
    if budget is None:
        raise SecurityError("a template ran outside a render")
    budget.left -= 1
    if budget.left < 0:
        raise SecurityError(f"the template does more than {BUDGET} loop steps and calls")


def _bounded(iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        _spend()
        yield item


def _size(value: Any) -> None:
    if isinstance(value, str | list | tuple) and len(value) > MAX_VALUE:
        raise SecurityError(f"a value of more than {MAX_VALUE} characters or items")


def _concat(parts: list[Any]) -> str:
    out = "".join(str(part) for part in parts)
    _size(out)
    return out


def _range(*args: int) -> range:
    found = range(*args)
    if len(found) > MAX_RANGE:
        raise SecurityError(f"range() of more than {MAX_RANGE} numbers")
    return found


class _Sandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "+", "%", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "%" and isinstance(left, str):
            raise SecurityError("'%' formatting is not available; use ~ and filters")
        if operator == "**" and (not isinstance(right, int | float) or abs(right) > 64):
            raise SecurityError("'**' with an exponent beyond 64")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * max(times, 0) > MAX_VALUE:
                    raise SecurityError(f"a value of more than {MAX_VALUE} characters")
        result = super().call_binop(context, operator, left, right)
        _size(result)
        return result

    def is_safe_callable(self, obj: Any) -> bool:
        if not super().is_safe_callable(obj):
            return False
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, str | bytes | list | tuple | dict | set | int | float):
            return getattr(obj, "__name__", "") in SAFE_METHODS
        return True

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend()
        return super().call(__context, __obj, *args, **kwargs)


class _Guard(NodeTransformer):
    """Rewrites a parsed template: every loop's iterable through the budget, every ``~`` through
    the size bound; refuses what a sandboxed template may not do."""

    def __init__(self, field: str) -> None:
        self.field = field

    def refuse(self, node: nodes.Node, message: str) -> TemplateProblem:
        return TemplateProblem(self.field, f"line {node.lineno}: {message}")

    def visit_For(self, node: nodes.For) -> nodes.Node:
        if node.recursive:
            raise self.refuse(node, "recursive loops are not available")
        node = self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "_bounded", [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        node = self.generic_visit(node)
        parts = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Filter(parts, "_concat", [], [], None, None, lineno=node.lineno)

    def visit_Getattr(self, node: nodes.Getattr) -> nodes.Node:
        if node.attr.startswith("_"):
            raise self.refuse(node, f"attribute {node.attr!r} is not available")
        visited: nodes.Node = self.generic_visit(node)
        return visited

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        arg = node.arg
        if isinstance(arg, nodes.Const) and isinstance(arg.value, str) and arg.value[:1] == "_":
            raise self.refuse(node, f"key {arg.value!r} is not available")
        visited: nodes.Node = self.generic_visit(node)
        return visited

    def visit_Filter(self, node: nodes.Filter) -> nodes.Node:
        if node.name not in FILTERS:
            raise self.refuse(node, f"filter {node.name!r} is not available")
        visited: nodes.Node = self.generic_visit(node)
        return visited

    def generic_visit(self, node: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(node, nodes.Include | nodes.Import | nodes.FromImport | nodes.Extends):
            raise self.refuse(node, "include, import and extends are not available")
        return super().generic_visit(node, *args, **kwargs)


@functools.cache
def _environment() -> _Sandbox:
    env = _Sandbox(autoescape=False, undefined=ChainableUndefined, keep_trailing_newline=False)
    env.filters = {name: env.filters[name] for name in FILTERS}
    env.filters["_bounded"] = _bounded
    env.filters["_concat"] = _concat
    env.globals = {"range": _range}
    return env


@functools.lru_cache(maxsize=1024)
def compile_one(field: str, source: str) -> Template:
    """``source`` compiled for ``field`` (``title`` or ``body``); :class:`TemplateProblem` for a
    syntax error, something the sandbox never allows, or a source over its size limit."""
    limit = MAX_SOURCE.get(field, MAX_SOURCE["body"])
    if len(source) > limit:
        raise TemplateProblem(field, f"is longer than {limit} characters")
    env = _environment()
    try:
        tree = env.parse(source)
        guarded = _Guard(field).visit(tree)
        code = env.compile(guarded)
    except TemplateSyntaxError as error:
        raise TemplateProblem(field, f"line {error.lineno}: {error.message}") from error
    except TemplateProblem:
        raise
    except (RecursionError, MemoryError, ValueError, TypeError) as error:  # e.g. "((((…"
        raise TemplateProblem(field, f"cannot be compiled ({type(error).__name__})") from error
    return env.template_class.from_code(env, code, env.make_globals(None), None)


def render(template: Template, context: Mapping[str, Any], field: str) -> str:
    """The text ``template`` makes of ``context``, within the budget and :data:`MAX_OUTPUT`."""
    token = _budget.set(_Budget(BUDGET))
    try:
        out: list[str] = []
        size = 0
        for chunk in template.generate(dict(context)):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise SecurityError(f"the output is longer than {MAX_OUTPUT} characters")
            out.append(chunk)
        return "".join(out)
    except TemplateProblem:
        raise
    except Exception as error:  # the sandbox, the budget, a TypeError in the author's code…
        raise TemplateProblem(field, f"{type(error).__name__}: {error}") from error
    finally:
        _budget.reset(token)


@dataclass(frozen=True, slots=True)
class Pair:
    """The title and body template of one locale."""

    title: Template
    body: Template | None

    @classmethod
    def of(cls, title: str, body: str | None) -> Pair:
        return cls(compile_one("title", title), compile_one("body", body) if body else None)

    def render(self, context: Mapping[str, Any]) -> tuple[str, str]:
        title = render(self.title, context, "title").strip()
        if not title:
            raise TemplateProblem("title", "rendered blank for this data")
        body = render(self.body, context, "body") if self.body is not None else ""
        return title, body
