"""Publishing: durability, idempotency, ordering under concurrency, limits, compat route."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx
import pytest

from tests.support import OPERATOR, ServerThread, Tenant, create_tenant, publish

pytestmark = pytest.mark.anyio


async def test_publish_answers_the_stored_notification(
    server: ServerThread, tenant: Tenant
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(
            f"{server.url}/v1/notifications",
            headers=tenant.auth,
            json={
                "type": "payment_received",
                "title": "Payment received",
                "body": "$120 for booking #7",
                "data": {"booking_id": 7, "amount": 120},
                "link": "/bookings/7",
                "audience": {"roles": ["owner"]},
            },
        )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] == 1
    assert body["created_at"].endswith("Z")
    assert body["audience"] == {"roles": ["owner"]}
    assert body["data"] == {"booking_id": 7, "amount": 120}


async def test_idempotent_retries_make_one_notification(
    server: ServerThread, tenant: Tenant
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        url = f"{server.url}/v1/notifications"
        headers = {**tenant.auth, "Idempotency-Key": "booking-7-created"}
        payload = {"type": "booking_created", "title": "New booking"}
        answers = await asyncio.gather(
            *[client.post(url, json=payload, headers=headers) for _ in range(8)]
        )
        assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
        assert {a.json()["id"] for a in answers} == {1}
        r = await client.post(url, json={**payload, "title": "Other"}, headers=headers)
        assert r.status_code == 422
        assert r.json()["code"] == "idempotency_key_mismatch"
        nxt = await publish(client, tenant, "next one")
        assert nxt["id"] == 2, "a replayed key must not burn a seq"


async def test_concurrent_publishers_get_gap_free_ordered_seqs(
    server: ServerThread, tenant: Tenant
) -> None:
    async def one_client(n: int) -> list[int]:
        async with httpx.AsyncClient(timeout=20) as client:
            return [(await publish(client, tenant, f"c{n}-{i}"))["id"] for i in range(25)]

    results = await asyncio.gather(*[one_client(n) for n in range(12)])
    ids = sorted(i for r in results for i in r)
    assert ids == list(range(1, 301))
    for own in results:
        assert own == sorted(own), "each client's own publishes are ordered"
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(
            f"{server.url}/v1/feed",
            params={"limit": 100},
            headers={"Authorization": f"Bearer {tenant.token('ann')}"},
        )
        assert [n["id"] for n in r.json()["items"]] == list(range(300, 200, -1))


async def test_batch_publish_is_all_or_nothing(server: ServerThread, tenant: Tenant) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        url = f"{server.url}/v1/notifications/batch"
        items = [{"type": "reminder", "title": f"r{i}"} for i in range(100)]
        r = await client.post(url, json={"notifications": items}, headers=tenant.auth)
        assert r.status_code == 201, r.text
        assert [n["id"] for n in r.json()["notifications"]] == list(range(1, 101))
        too_many = await client.post(
            url, json={"notifications": items + items[:1]}, headers=tenant.auth
        )
        assert too_many.status_code == 422
        bad_one = [*items[:3], {"type": "reminder", "title": "x" * 5000}]
        r = await client.post(url, json={"notifications": bad_one}, headers=tenant.auth)
        assert r.status_code == 422
        nxt = await publish(client, tenant, "after")
        assert nxt["id"] == 101, "a refused batch stores nothing"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"type": "booking_created"}, 422, "validation_failed"),
        ({"type": "Bad Type!", "title": "t"}, 422, "validation_failed"),
        ({"type": "x", "title": "t", "unknown": 1}, 422, "validation_failed"),
        ({"type": "x", "title": 5}, 422, "validation_failed"),
        ({"type": "x", "title": "   "}, 422, "validation_failed"),
        ({"type": "x", "title": "t" * 201}, 422, "validation_failed"),
        ({"type": "x", "title": "t", "body": "b" * 2001}, 422, "validation_failed"),
        ({"type": "x", "title": "t", "data": {"blob": "d" * 9000}}, 413, "payload_too_large"),
        ({"type": "x", "title": "t", "data": [1, 2]}, 422, "validation_failed"),
        ({"type": "x", "title": "t", "link": "javascript:alert(1)"}, 422, "validation_failed"),
        ({"type": "x", "title": "t", "link": "//evil.example"}, 422, "validation_failed"),
        ({"type": "x", "title": "t", "audience": {}}, 422, "validation_failed"),
        ({"type": "x", "title": "t", "audience": {"users": ["a b"]}}, 422, "validation_failed"),
        ({"type": "x", "title": "t", "audience": {"teams": ["a"]}}, 422, "validation_failed"),
    ],
)
async def test_bad_notifications_are_refused_and_change_nothing(
    server: ServerThread, tenant: Tenant, payload: dict[str, object], status: int, code: str
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(f"{server.url}/v1/notifications", json=payload, headers=tenant.auth)
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["code"] == code and body["status"] == status and body["detail"]
        assert (await publish(client, tenant, "ok"))["id"] == 1


async def test_malformed_requests(server: ServerThread, tenant: Tenant) -> None:
    url = f"{server.url}/v1/notifications"
    json_headers = {**tenant.auth, "Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(url, content=b"{not json", headers=json_headers)
        assert (r.status_code, r.json()["code"]) == (400, "invalid_json")
        r = await client.post(
            url,
            content=b'{"type":"x","title":"t"}',
            headers={**tenant.auth, "Content-Type": "text/plain"},
        )
        assert (r.status_code, r.json()["code"]) == (415, "unsupported_media_type")
        r = await client.post(url, content=b"[" + b"1," * 600_000 + b"1]", headers=json_headers)
        assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")
        r = await client.post(
            url,
            json={"type": "x", "title": "t"},
            headers={**tenant.auth, "Idempotency-Key": "x" * 201},
        )
        assert r.status_code == 422
        r = await client.get(f"{server.url}/v1/nope")
        assert (r.status_code, r.json()["code"]) == (404, "not_found")
        r = await client.delete(url, headers=tenant.auth)
        assert (r.status_code, r.json()["code"]) == (405, "method_not_allowed")
        assert (await publish(client, tenant, "ok"))["id"] == 1


async def test_credentials(server: ServerThread, tenant: Tenant) -> None:
    url = f"{server.url}/v1/notifications"
    body = {"type": "x", "title": "t"}
    op = {"Authorization": f"Bearer {OPERATOR}"}
    async with httpx.AsyncClient(timeout=10) as client:
        cases = [
            ({}, 401, "missing_credentials"),
            ({"Authorization": "Basic abc"}, 401, "invalid_credentials"),
            ({"Authorization": "Bearer tdg_nope"}, 401, "invalid_credentials"),
            ({"Authorization": f"Bearer {tenant.key[:-2]}xx"}, 401, "invalid_credentials"),
            ({"Authorization": f"Bearer {tenant.token('ann')}"}, 401, "invalid_credentials"),
        ]
        for headers, status, code in cases:
            r = await client.post(url, json=body, headers=headers)
            assert (r.status_code, r.json()["code"]) == (status, code), headers
        # A key without the publish scope.
        r = await client.post(
            f"{server.url}/v1/admin/tenants/{tenant.id}/keys",
            json={"name": "tokens only", "scopes": ["tokens"]},
            headers=op,
        )
        narrow = r.json()["key"]
        r = await client.post(url, json=body, headers={"Authorization": f"Bearer {narrow}"})
        assert (r.status_code, r.json()["code"]) == (403, "insufficient_scope")
        # Revocation takes effect at once.
        key_id = tenant.key.split("_")[1]
        assert (await client.post(url, json=body, headers=tenant.auth)).status_code == 201
        r = await client.delete(f"{server.url}/v1/admin/keys/{key_id}", headers=op)
        assert r.status_code == 200 and r.json()["revoked_at"]
        r = await client.post(url, json=body, headers=tenant.auth)
        assert (r.status_code, r.json()["code"]) == (401, "key_revoked")
        r = await client.post(f"{server.url}/v1/tokens", json={"user": "a"}, headers=tenant.auth)
        assert (r.status_code, r.json()["code"]) == (401, "key_revoked")


async def test_compat_broadcast_route(
    server: ServerThread, tenant: Tenant, other_tenant: Tenant
) -> None:
    url = f"{server.url}/api/sse/broadcast"
    notification = {
        "id": 991,
        "type": "booking_confirmed",
        "title": "Booking confirmed",
        "message": "Castle XL for Saturday",
        "link": "/app/bookings/991",
        "read": False,
    }
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(
            url, json={"tenantId": tenant.id, "notification": notification}, headers=tenant.auth
        )
        assert r.status_code == 200, r.text
        stored = r.json()["notification"]
        assert r.json()["success"] is True
        assert stored["body"] == "Castle XL for Saturday"
        assert stored["link"] == "/app/bookings/991"
        assert stored["data"] == {"id": 991, "read": False}
        r = await client.post(
            url,
            json={"tenantId": other_tenant.id, "notification": notification},
            headers=tenant.auth,
        )
        assert (r.status_code, r.json()["code"]) == (403, "wrong_tenant")
        r = await client.post(url, json={"tenantId": tenant.id}, headers=tenant.auth)
        assert r.status_code == 422
        r = await client.post(url, json={"tenantId": tenant.id, "notification": notification})
        assert r.status_code == 401
        r = await client.get(
            f"{server.url}/v1/feed", headers={"Authorization": f"Bearer {other_tenant.token('x')}"}
        )
        assert r.json()["items"] == []


async def test_numeric_tenant_ids_work_with_the_seed_shape(server: ServerThread) -> None:
    six = create_tenant(server.url, "6")
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(
            f"{server.url}/api/sse/broadcast",
            json={"tenantId": 6, "notification": {"title": "Hi", "userId": 3}},
            headers=six.auth,
        )
        assert r.status_code == 200, r.text
        assert r.json()["notification"]["audience"] == {"users": ["3"]}


def _nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def _raw(payload: object) -> bytes:
    """JSON as a careless client may send it: ``NaN``/``Infinity`` literals, ``\\ud800``."""
    return json.dumps(payload, allow_nan=True).encode()


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"data": _nested(300)}, id="data-deeper-than-the-encoder"),
        pytest.param({"data": {"s": "\ud800"}}, id="data-lone-surrogate"),
        pytest.param({"data": {"\udc00": 1}}, id="data-lone-surrogate-key"),
        pytest.param({"data": {"n": math.nan}}, id="data-nan"),
        pytest.param({"data": {"n": [math.inf]}}, id="data-infinity"),
        pytest.param({"data": {"s": "a\x00b"}}, id="data-nul"),
        pytest.param({"data": {"big": 2**64}}, id="data-int-beyond-64-bits"),
        pytest.param({"title": "a\x00b"}, id="title-nul"),
        pytest.param({"body": "a\x00b"}, id="body-nul"),
        pytest.param({"link": "/a\x00b"}, id="link-nul"),
        pytest.param({"title": "a\ud800b"}, id="title-lone-surrogate"),
        pytest.param({"body": "\udfff"}, id="body-lone-surrogate"),
    ],
)
async def test_unstorable_input_is_a_422_and_changes_nothing(
    server: ServerThread, tenant: Tenant, fields: dict[str, object]
) -> None:
    """Each class the review found answering 500 (issue 12, item 4), on SQLite and PostgreSQL,
    single and batch."""
    headers = {**tenant.auth, "Content-Type": "application/json"}
    one = {"type": "booking_created", "title": "t", **fields}
    async with httpx.AsyncClient(timeout=10, base_url=server.url) as client:
        for path, payload in (
            ("/v1/notifications", one),
            ("/v1/notifications/batch", {"notifications": [{"type": "x", "title": "ok"}, one]}),
        ):
            r = await client.post(path, content=_raw(payload), headers=headers)
            assert r.status_code == 422, (path, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["code"] == "validation_failed"
        assert (await publish(client, tenant, "ok"))["id"] == 1


async def test_batch_idempotency_key_fits_the_store_with_its_suffix(
    server: ServerThread, tenant: Tenant
) -> None:
    """A batch stores ``<key>#<index>``: its key is refused (422) beyond 197 characters,
    instead of overflowing the 200-character column (a 500 on PostgreSQL)."""
    url = f"{server.url}/v1/notifications/batch"
    items = [{"type": "reminder", "title": f"r{i}"} for i in range(100)]
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(
            url,
            json={"notifications": items},
            headers={**tenant.auth, "Idempotency-Key": "k" * 198},
        )
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        longest = {**tenant.auth, "Idempotency-Key": "k" * 197}
        r = await client.post(url, json={"notifications": items}, headers=longest)
        assert r.status_code == 201, r.text
        r = await client.post(url, json={"notifications": items}, headers=longest)
        assert r.status_code == 200, "a retry finds the stored batch"
        assert [n["id"] for n in r.json()["notifications"]] == list(range(1, 101))
        r = await client.post(
            f"{server.url}/v1/notifications",
            json={"type": "x", "title": "t"},
            headers={**tenant.auth, "Idempotency-Key": "s" * 200},
        )
        assert r.status_code == 201, "a single publish keeps the whole column"


@pytest.mark.parametrize(
    "notification",
    [
        pytest.param({"title": "t", "userIds": "12"}, id="userIds-string"),
        pytest.param({"title": "t", "userIds": 5}, id="userIds-number"),
        pytest.param({"title": "t", "userIds": [True]}, id="userIds-bool"),
        pytest.param({"title": "t", "userIds": [1.5]}, id="userIds-float"),
        pytest.param({"title": "t", "userIds": [{"id": 1}]}, id="userIds-object"),
        pytest.param({"title": "t", "userId": True}, id="userId-bool"),
        pytest.param({"title": "t", "userId": [1, 2]}, id="userId-list"),
        pytest.param({"title": "t", "roles": True}, id="roles-bool"),
        pytest.param({"title": "t", "roles": "owner"}, id="roles-string"),
        pytest.param({"title": "t", "roles": [1]}, id="roles-number"),
        pytest.param({"title": 5}, id="title-number"),
        pytest.param({"title": "t", "data": [1]}, id="data-list"),
        pytest.param({"title": "t", "anything": "a\x00b"}, id="extra-nul"),
    ],
)
async def test_compat_broadcast_refuses_mistyped_fields(
    server: ServerThread, tenant: Tenant, notification: dict[str, object]
) -> None:
    """Issue 12, item 3: a mistyped audience is a 422, never split into characters nor a 500."""
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(
            f"{server.url}/api/sse/broadcast",
            json={"tenantId": tenant.id, "notification": notification},
            headers=tenant.auth,
        )
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "validation_failed"
        assert (await publish(client, tenant, "ok"))["id"] == 1, "nothing was stored"


async def test_compat_broadcast_audiences(server: ServerThread, tenant: Tenant) -> None:
    url = f"{server.url}/api/sse/broadcast"
    cases: list[tuple[dict[str, Any], dict[str, list[str]] | None]] = [
        ({"userIds": [12, "ann"]}, {"users": ["12", "ann"]}),
        ({"userId": 12}, {"users": ["12"]}),
        ({"userId": "ann", "userIds": []}, {"users": ["ann"]}),
        ({"roles": ["owner"], "userIds": [3]}, {"users": ["3"], "roles": ["owner"]}),
        ({"userId": None, "roles": None}, None),
    ]
    async with httpx.AsyncClient(timeout=10) as client:
        for fields, audience in cases:
            r = await client.post(
                url,
                json={"tenantId": tenant.id, "notification": {"title": "t", **fields}},
                headers=tenant.auth,
            )
            assert r.status_code == 200, r.text
            assert r.json()["notification"]["audience"] == audience, fields


async def test_chunked_bodies_are_held_to_the_limit(server: ServerThread, tenant: Tenant) -> None:
    """A body sent without Content-Length (chunked) over TIDINGS_MAX_BODY_BYTES is a 413 like a
    declared one (issue 12, item 9), and one under it is published."""
    limit = server.settings.max_body_bytes
    headers = {**tenant.auth, "Content-Type": "application/json"}

    async def body(size: int) -> AsyncIterator[bytes]:
        yield b'{"type": "x", "title": "chunked", "body": "'
        for _ in range(size // 4096):
            yield b" " * 4096
        yield b'"}'

    async with httpx.AsyncClient(timeout=30) as client:
        url = f"{server.url}/v1/notifications"
        r = await client.post(url, content=body(limit + 8192), headers=headers)
        assert r.status_code == 413, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "payload_too_large"
        r = await client.post(url, content=body(1024), headers=headers)
        assert r.status_code == 201, r.text
        assert r.json()["id"] == 1, "the refused body stored nothing"


# -- the fast path (api/fastpublish.py) answers exactly as the declared routes ---------------

NOTE = {"type": "booking_created", "title": "t"}
_ONE = "/v1/notifications"
_BATCH = "/v1/notifications/batch"


def _bad_requests(key: str, tokens_only: str) -> list[tuple[str, dict[str, str], bytes]]:
    """(path, headers, body) of requests that must be refused; each is sent to both apps."""
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    good = json.dumps(NOTE).encode()
    bodies = [
        b"",
        b"{not json",
        b"[]",
        b"null",
        b'{"type":"x","title":"t","data":{"n":NaN}}',
        b'{"type":"x","title":"t","data":{"n":1e400}}',
        b'{"type":"x","title":"t","data":{"n":18446744073709551616}}',
        b'{"type":"x","title":"t\\ud800"}',
        b'{"type":"x","title":"t\\u0000"}',
        # each form of a NUL or a surrogate that json.loads turns into one: the fast path's
        # byte search (inputs.json_text_storable) must see them all, or it would store them
        b'{"type":"x","title":"t\\uDFFF"}',
        b'{"type":"x","title":"t\\uDbff\\u0041"}',
        b'{"type":"x","title":"t","data":{"a\\u0000":1}}',
        b'{"type":"x","title":"t","data":{"l":[1,{"m":"u\\ud9ff"}]}}',
        b'{"type":"x","title":"t\xed\xa0\x80"}',
        b'{"type":"x","title":"t\xed\xbf\xbf"}',
        '{"type":"x","title":"t\\u0000"}'.encode("utf-16-le"),
        '{"type":"x","title":"t\\ud800"}'.encode("utf-32"),
        b'{"type":"x","title":"t","extra":1}',
        b'{"type":"x","title":"   "}',
        b'{"type":"x","title":"t","link":"javascript:alert(1)"}',
        b'{"type":"x","title":"t","link":"/a b"}',
        b'{"type":"x","title":"t","audience":{}}',
        json.dumps({**NOTE, "audience": {"users": [f"u{i}" for i in range(1001)]}}).encode(),
        json.dumps({**NOTE, "data": {"d": [[[[[[[[1]]]]]]]] * 2}}).encode()[:-1],
        b"[" * 2000 + b"]" * 2000,
        b'{"type":"x","title":"t","data":' + b'{"a":' * 600 + b"1" + b"}" * 601,
    ]
    requests = [(_ONE, auth, body) for body in bodies]
    requests += [(_BATCH, auth, body) for body in bodies[:4]]
    requests += [
        (_BATCH, auth, b'{"notifications":[]}'),
        (_BATCH, auth, json.dumps({"notifications": [NOTE] * 101}).encode()),
        (_BATCH, auth, json.dumps({"notifications": [NOTE, {"type": "x"}]}).encode()),
        (
            _BATCH,
            auth,
            b'{"notifications":[{"type":"x","title":"t"},{"type":"x","title":"t","body":"\\u0000"}]}',
        ),
        (
            _BATCH,
            {**auth, "Idempotency-Key": "k" * 198},
            json.dumps({"notifications": [NOTE]}).encode(),
        ),
    ]
    for headers in (
        {"Content-Type": "application/json"},
        {"Authorization": "Basic abc", "Content-Type": "application/json"},
        {"Authorization": "Bearer ", "Content-Type": "application/json"},
        {"Authorization": "Bearer tdg_nope", "Content-Type": "application/json"},
        {"Authorization": f"Bearer {key}x", "Content-Type": "application/json"},
        {"Authorization": f"Bearer {tokens_only}", "Content-Type": "application/json"},
        {"Authorization": f"Bearer {key}", "Content-Type": "text/plain"},
        {"Authorization": f"Bearer {key}"},
        {**auth, "Idempotency-Key": "x" * 201},
        {**auth, "Idempotency-Key": "a b"},
        {**auth, "Idempotency-Key": "a\tb"},
    ):
        requests.append((_ONE, headers, good))
        requests.append((_ONE, headers, b"{not json"))
    return requests


def _without_fast_path(app: Any) -> Any:
    from tidings.api.fastpublish import FastPublish

    app.user_middleware = [m for m in app.user_middleware if m.cls is not FastPublish]
    return app


async def test_the_fast_path_answers_every_request_as_the_declared_route(
    settings: Any, tmp_path: Any
) -> None:
    """Two apps on one store, one without :class:`FastPublish`: every refused request gets the
    same status, media type and bytes from both, and nothing is stored by any of them."""
    from tidings.app import create_app

    fast, routed = create_app(settings), _without_fast_path(create_app(settings))
    async with fast.router.lifespan_context(fast), routed.router.lifespan_context(routed):
        service = fast.state.tidings
        await service.create_tenant("same", "Same")
        _, key = await service.create_key("same", "k", ["publish"])
        _, tokens_only = await service.create_key("same", "t", ["tokens"])
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
            for app in (fast, routed)
        ]
        try:
            auth = {"Authorization": f"Bearer {key}"}
            first = await clients[0].post(_ONE, json=NOTE, headers={**auth, "Idempotency-Key": "k"})
            assert first.status_code == 201
            mismatch = (
                _ONE,
                {**auth, "Idempotency-Key": "k"},
                json.dumps({**NOTE, "title": "u"}).encode(),
            )
            for path, headers, body in [*_bad_requests(key, tokens_only), mismatch]:
                a, b = [await c.post(path, content=body, headers=headers) for c in clients]
                where = (path, headers, body[:80])
                assert 400 <= a.status_code < 500, (where, a.text)
                assert (a.status_code, a.headers["content-type"], a.content) == (
                    b.status_code,
                    b.headers["content-type"],
                    b.content,
                ), where
            replays = [
                await c.post(_ONE, json=NOTE, headers={**auth, "Idempotency-Key": "k"})
                for c in clients
            ]
            assert [r.status_code for r in replays] == [200, 200]
            assert replays[0].content == replays[1].content
            for client in clients:  # and a new one each: same shape, the next seq
                r = await client.post(_BATCH, json={"notifications": [NOTE]}, headers=auth)
                assert r.status_code == 201, r.text
            ids = [n["id"] for n in r.json()["notifications"]]
            assert ids == [3], "nothing was stored by a refused request"
        finally:
            for client in clients:
                await client.aclose()


async def test_the_fast_path_takes_ordinary_publishes_and_hands_on_the_rest(
    settings: Any,
) -> None:
    """:class:`FastPublish` answers a plain publish itself; a request it does not accept
    reaches the app behind it with its body intact (here the next app only records)."""
    from tidings.api.fastpublish import FastPublish
    from tidings.app import create_app

    app = create_app(settings)
    reached: list[bytes] = []

    async def behind(scope: Any, receive: Any, send: Any) -> None:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        reached.append(b"".join(chunks))
        await send({"type": "http.response.start", "status": 599, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    fast = FastPublish(behind)

    async def call(path: str, body: bytes, *, key: str, chunked: bool = False) -> int:
        scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "root_path": "",
            "query_string": b"",
            "app": app,
            "headers": [
                (b"authorization", f"Bearer {key}".encode()),
                (b"content-type", b"application/json"),
            ],
        }
        parts = [body[:5], body[5:]] if chunked else [body]
        messages = [
            {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
            for i, part in enumerate(parts)
        ]
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await asyncio.wait_for(fast(scope, receive, send), 20)
        return status[0]

    async with app.router.lifespan_context(app):
        service = app.state.tidings
        await service.create_tenant("fast", "Fast")
        _, key = await service.create_key("fast", "k", ["publish"])
        good = json.dumps(NOTE).encode()
        assert await call(_ONE, good, key=key) == 201
        assert await call(_ONE, good, key=key, chunked=True) == 201
        assert await call(_BATCH, json.dumps({"notifications": [NOTE]}).encode(), key=key) == 201
        assert reached == [], "ordinary publishes are answered by the fast path"
        bad = b'{"type":"x","title":"   "}'
        assert await call(_ONE, bad, key=key, chunked=True) == 599
        assert await call(_ONE, good, key="tdg_nope") == 599
        assert reached == [bad, good], "what it does not take is handed on, body intact"


def test_the_local_publish_window_counts_as_a_moving_window() -> None:
    """``LocalWindows`` (the per-instance publish limit): charges within the window plus the
    new cost must fit the limit; a refusal names when the oldest charge leaves the window."""
    import time

    from limits import parse

    from tidings.ratelimit import LocalWindows

    windows = LocalWindows(parse("5/minute"))
    before = time.time()
    assert windows.hit("a", 2) is None and windows.hit("a", 3) is None
    refused = windows.hit("a", 1)
    assert refused is not None and refused.remaining == 0
    assert before + 60 <= refused.reset_time <= time.time() + 60
    assert windows.hit("b", 5) is None, "each key has its own window"
    assert windows.hit("c", 6) is not None, "a cost beyond the limit never fits"
    assert windows.hit("c", 5) is None
