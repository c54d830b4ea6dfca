"""Publishes answered below the app's layers (``tidings.api.fastpublish.EdgePublish``, taken by
``tidings.server.AppProtocol``): every request gets the app's own answer, byte for byte.

Two servers on stores of their own, one on the edge protocol (as ``tidings serve``), one under
plain uvicorn whose app has no fast path at all (every publish answered by the declared
FastAPI routes), get the same raw requests in the same order; their answers must be equal but
for the ``date`` header and the ``created_at`` of a new notification. Then the edge's publisher
must have answered exactly the requests it may take.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from starlette.middleware.gzip import GZipMiddleware

from tests.core.test_publish import _bad_requests, _without_fast_path
from tests.support import (
    PlainServer,
    ServerThread,
    Tenant,
    access_lines,
    create_tenant,
    exchange,
    make_settings,
)
from tidings.api.fastpublish import EdgePublish, edge_publisher
from tidings.app import create_app
from tidings.server import EdgeProtocol, Server

NOTE = {"type": "booking_created", "title": "Booking #1042 confirmed"}
LIMIT = 4096  # TIDINGS_MAX_BODY_BYTES of both servers


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[list[tuple[ServerThread, Tenant, Tenant]]]:
    """The same app twice, each with a tenant, its publish key and a tokens-only key: on the
    edge protocol, and under plain uvicorn without the fast path."""
    servers: list[ServerThread] = []
    try:
        out = []
        for name, kind in (("edge", ServerThread), ("plain", PlainServer)):
            (tmp_path / name).mkdir()
            settings = make_settings(str(tmp_path / name), max_body_bytes=LIMIT)
            srv = kind(settings)
            if kind is PlainServer:  # the declared routes answer every publish there
                _without_fast_path(srv.app)
            srv.start()
            servers.append(srv)
            tokens_only = create_tenant(srv.url, "jump-joy-2", scopes=["tokens"])
            out.append((srv, create_tenant(srv.url, "jump-joy"), tokens_only))
        yield out
    finally:
        for srv in servers:
            srv.stop()


def _request(
    path: str, headers: dict[str, str], body: bytes, *, close: bool = True, version: str = "1.1"
) -> bytes:
    lines = [f"POST {path} HTTP/{version}", "Host: t"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if not any(name.lower() == "transfer-encoding" for name in headers):
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _chunked(body: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:7], body[7:]) if p) + b"0\r\n\r\n"


def _requests(key: str, tokens_only: str) -> list[bytes]:
    """Raw requests, each on a connection of its own, in the order both servers get them."""
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    good = json.dumps(NOTE).encode()
    batch = json.dumps({"notifications": [NOTE, NOTE]}).encode()
    big = json.dumps({**NOTE, "body": "x" * LIMIT}).encode()
    out = [
        _request("/v1/notifications", auth, good),  # new: 201
        _request("/v1/notifications", {**auth, "Idempotency-Key": "k1"}, good),  # new
        _request("/v1/notifications", {**auth, "Idempotency-Key": "k1"}, good),  # again: 200
        _request("/v1/notifications", {**auth, "Idempotency-Key": "k1"}, batch),  # mismatch
        _request("/v1/notifications/batch", auth, batch),
        _request("/v1/notifications", {**auth, "Expect": "100-continue"}, good),
        _request("/v1/notifications", {**auth, "Origin": "https://host.example"}, good),
        _request("/v1/notifications", {**auth, "X-Forwarded-For": "203.0.113.7"}, good),
        _request("/v1/notifications", auth, good, version="1.0"),
        # what the layers above the publish path answer or change: each must still do it
        _request("/v1/notifications", auth, big),  # declared over the limit: 413
        _request("/v1/notifications", {**auth, "Transfer-Encoding": "chunked"}, _chunked(good)),
        _request("/v1/notifications", {**auth, "Transfer-Encoding": "chunked"}, _chunked(big)),
        _request("/v1/notifications?x=%00", auth, good),  # NUL in the query: 400
        _request("/v1/notifications?x=1", auth, good),
        _request("/v1/notific%61tions", auth, good),
        _request("/v1/notifications/", auth, good),
        _request("//v1/notifications", auth, good),
        _request("/v1/notifications/batch/", auth, batch),
    ]
    for path, headers, body in _bad_requests(key, tokens_only):
        out.append(_request(path, headers, body))
    return out


_DATE = re.compile(rb"\r\ndate: [^\r]*")
_CREATED = re.compile(rb'"created_at":"[^"]*"')


def _comparable(answers: bytes) -> bytes:
    """Answers without what differs between two servers: the date and new notifications'
    ``created_at`` (and so their lengths, checked on their own by ``_lengths_hold``)."""
    out = _DATE.sub(b"", answers)
    out = _CREATED.sub(b'"created_at":"-"', out)
    return re.sub(rb"\r\ncontent-length: \d+", b"", out)


def _final(answer: bytes) -> bytes:
    """The answer after an interim ``100 Continue``."""
    interim = b"HTTP/1.1 100 Continue\r\n\r\n"
    return answer[len(interim) :] if answer.startswith(interim) else answer


def _lengths_hold(answer: bytes) -> None:
    head, _, body = _final(answer).partition(b"\r\n\r\n")
    declared = re.search(rb"\r\ncontent-length: (\d+)", head)
    if declared is not None:
        assert int(declared.group(1)) == len(body), answer[:200]


def _answered(srv: ServerThread) -> int:
    publisher = getattr(srv.app.state, "edge_publish", None)
    return publisher.answered if isinstance(publisher, EdgePublish) else 0


def _each(
    pair: list[tuple[ServerThread, Tenant, Tenant]],
    make: Callable[[str, str], list[bytes]],
) -> list[list[bytes]]:
    async def run() -> list[list[bytes]]:
        return [
            [await exchange(srv.port, r) for r in make(tenant.key, tokens_only.key)]
            for srv, tenant, tokens_only in pair
        ]

    return asyncio.run(run())


def test_every_publish_is_answered_as_the_app_answers_it(
    pair: list[tuple[ServerThread, Tenant, Tenant]],
) -> None:
    mine, theirs = _each(pair, _requests)
    requests = _requests("K", "T")
    statuses = []
    for request, a, b in zip(requests, mine, theirs, strict=True):
        assert a.startswith(b"HTTP/1.1 "), (request[:80], a[:120])
        _lengths_hold(a)
        assert _comparable(a) == _comparable(b), (request[:120], a[:300], b[:300])
        statuses.append(int(_final(a).split(b"\r\n", 1)[0].split()[1]))
    assert statuses[:9] == [201, 201, 200, 422, 201, 201, 201, 201, 201], statuses
    assert statuses[9:14] == [413, 201, 413, 400, 201], statuses
    assert all(400 <= s < 500 for s in statuses[len(statuses) - len(_bad_requests("K", "T")) :])
    # Taken below the app: the nine plain publishes above and the encoded path's (the same
    # route); each of the others went through the whole app (a declined one handed on whole).
    assert _answered(pair[0][0]) == 10
    assert _answered(pair[1][0]) == 0


_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)
_FIELD = st.sampled_from(["type", "title", "body", "data", "link", "audience", "group", "x"])
_NOTE = st.fixed_dictionaries(
    {"type": st.sampled_from(["booking_created", "", "a" * 200, 7])},
    optional={
        "title": _TEXT,
        "body": _TEXT,
        "data": _JSON,
        "link": st.sampled_from(["/bookings/1", "https://x.example/a", "javascript:x", 3]),
        "audience": st.sampled_from([{"users": ["u1"]}, {"roles": ["staff"]}, {}, [], None]),
    },
)


@hyp_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=_NOTE | st.dictionaries(_FIELD, _JSON, max_size=4) | _JSON,
    batch=st.booleans(),
    key=st.none() | st.sampled_from(["k", "k2", "a b", "x" * 199]),
    media=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/json"]),
)
def test_any_body_is_answered_as_the_app_answers_it(
    pair: list[tuple[ServerThread, Tenant, Tenant]],
    body: Any,
    batch: bool,
    key: str | None,
    media: str,
) -> None:
    """Whatever the body, the key and the media type, both servers answer alike (both get the
    same requests in the same order, so their stores stay alike too)."""

    def one(api_key: str, _: str) -> list[bytes]:
        headers = {"Authorization": f"Bearer {api_key}", "Content-Type": media}
        if key is not None:
            headers["Idempotency-Key"] = key
        path = "/v1/notifications/batch" if batch else "/v1/notifications"
        document = {"notifications": [body, body]} if batch else body
        return [_request(path, headers, json.dumps(document).encode())]

    (mine,), (theirs,) = _each(pair, one)
    _lengths_hold(mine)
    assert _comparable(mine) == _comparable(theirs), (mine[:300], theirs[:300])


def test_pipelined_publishes_are_answered_in_order_as_the_app_answers_them(
    pair: list[tuple[ServerThread, Tenant, Tenant]],
) -> None:
    def pipelined(key: str, tokens_only: str) -> list[bytes]:
        auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        bad = {"Authorization": f"Bearer {tokens_only}", "Content-Type": "application/json"}
        good = json.dumps(NOTE).encode()
        parts = [
            _request("/v1/notifications", auth, good, close=False),
            _request("/v1/notifications", bad, good, close=False),  # refused by the route
            _request("/v1/notifications/batch", auth, b'{"notifications":[]}', close=False),
            _request("/v1/notifications", {**auth, "Idempotency-Key": "p"}, good, close=False),
            _request("/v1/notifications", {**auth, "Idempotency-Key": "p"}, good),
        ]
        return [b"".join(parts)]  # one write: one connection, five requests

    (mine,), (theirs,) = _each(pair, pipelined)
    assert _comparable(mine) == _comparable(theirs)
    statuses = re.findall(rb"HTTP/1.1 (\d+)", mine)
    assert statuses == [b"201", b"403", b"422", b"201", b"200"], mine[:400]
    assert re.findall(rb'"id":(\d+)', mine) == [b"1", b"2", b"2"]
    assert _answered(pair[0][0]) == 3


def test_an_unexpected_error_is_logged_and_answered_as_the_app_answers_it(
    pair: list[tuple[ServerThread, Tenant, Tenant]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A fault inside an accepted publish: the app's own 500 problem (its ``Exception``
    handler, through the same error middleware), logged; the connection closes after it."""
    for srv, _, _ in pair:

        async def broken(*_: Any, **__: Any) -> Any:
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(srv.service, "publish", broken)

    def one(key: str, _: str) -> list[bytes]:
        auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        return [_request("/v1/notifications", auth, json.dumps(NOTE).encode(), close=False)]

    with caplog.at_level(logging.ERROR):
        (mine,), (theirs,) = _each(pair, one)  # read until the server closes
    assert mine.startswith(b"HTTP/1.1 500 "), mine
    assert _comparable(mine) == _comparable(theirs)
    assert b'"code":"internal"' in mine or b"internal" in mine
    failures = [
        r for r in caplog.records if "unhandled error on POST /v1/notifications" in r.message
    ]
    assert len(failures) == 2, [r.message for r in caplog.records]
    assert _answered(pair[0][0]) == 0  # it did not answer: the error middleware did


def test_a_publish_s_access_line_is_the_app_s(
    pair: list[tuple[ServerThread, Tenant, Tenant]],
) -> None:
    """With uvicorn's access log on, a publish taken below the app logs the line the app's
    path logs, with the client from a trusted proxy's ``X-Forwarded-For``."""

    def two(key: str, _: str) -> list[bytes]:
        auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        good = json.dumps(NOTE).encode()
        return [
            _request("/v1/notifications", auth, good),
            _request("/v1/notifications", {**auth, "X-Forwarded-For": "203.0.113.7"}, good),
        ]

    seen = []
    with access_lines() as lines:
        for srv, tenant, tokens_only in pair:
            asyncio.run(exchange(srv.port, two(tenant.key, tokens_only.key)[0]))
            asyncio.run(exchange(srv.port, two(tenant.key, tokens_only.key)[1]))
            seen.append([re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line) for line in lines])
            lines.clear()
    assert seen[0] == seen[1]
    assert seen[0][1] == '203.0.113.7:0 - "POST /v1/notifications HTTP/1.1" 201', seen[0]
    assert _answered(pair[0][0]) == 2


def test_only_an_app_whose_layers_are_all_known_is_answered_below_them(tmp_path: Path) -> None:
    """An extension's middleware, a root path, FastAPI's body limit or OpenTelemetry: every
    publish then goes through the whole app (no publisher is made)."""
    settings = make_settings(str(tmp_path))
    assert isinstance(edge_publisher(create_app(settings)), EdgePublish)
    assert edge_publisher(object()) is None
    wrapped = create_app(settings)
    wrapped.add_middleware(GZipMiddleware)
    assert edge_publisher(wrapped) is None
    rooted = create_app(settings)
    rooted.root_path = "/notify"
    assert edge_publisher(rooted) is None
    limited = create_app(settings)
    limited.max_body_size = 1000
    assert edge_publisher(limited) is None
    traced = create_app(make_settings(str(tmp_path), opentelemetry=True))
    assert edge_publisher(traced) is None
    plain = FastAPI()
    assert edge_publisher(plain) is None


def test_under_a_root_path_every_publish_goes_through_the_app(tmp_path: Path) -> None:
    """uvicorn's ``--root-path``: the path the app routes is not the one the request names,
    so the app answers every request (here ``/v1`` + ``/notifications``: the app's 404)."""
    srv = ServerThread(make_settings(str(tmp_path)))
    srv.server = Server(
        uvicorn.Config(
            srv.app,
            host="127.0.0.1",
            port=srv.port,
            log_level="warning",
            http=EdgeProtocol,
            proxy_headers=False,
            root_path="/v1",
        ),
        srv.app,
    )
    srv.thread = threading.Thread(target=srv.server.run, daemon=True)
    srv.start()
    try:
        tenant = create_tenant(srv.url, "jump-joy")
        auth = {"Authorization": f"Bearer {tenant.key}", "Content-Type": "application/json"}
        answer = asyncio.run(
            exchange(srv.port, _request("/notifications", auth, json.dumps(NOTE).encode()))
        )
        assert answer.startswith(b"HTTP/1.1 404 "), answer[:200]
        assert _answered(srv) == 0
    finally:
        srv.stop()
