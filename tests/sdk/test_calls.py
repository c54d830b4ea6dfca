"""Every call of the SDK against a live server, once per client (sync and async)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.sdk.both import Clients
from tests.support import ServerThread, Tenant
from tidings.client import ApiError, StreamToken
from tidings.client._tokens import UserRef


def test_publish_single_and_batch_and_idempotency(
    live: ServerThread, fresh: Tenant, make: Clients
) -> None:
    client = make(live.url, api_key=fresh.key)
    one = client.publish(
        "booking_created",
        "New booking",
        body="Castle XL, Saturday",
        data={"booking": 7},
        link="/bookings/7",
        audience={"roles": ["owner"]},
    )
    assert (one["id"], one["title"], one["data"], one["link"]) == (
        1,
        "New booking",
        {"booking": 7},
        "/bookings/7",
    )
    assert one["audience"] == {"roles": ["owner"]}
    again = client.publish("booking_created", "Paid", idempotency_key="pay-7")
    repeat = client.publish("booking_created", "Paid", idempotency_key="pay-7")
    assert repeat["id"] == again["id"] == 2, "one key, one notification"
    items = [{"type": "system", "title": "b1"}, {"type": "reminder", "title": "b2"}]
    batch = client.publish_batch(items, idempotency_key="batch-1")
    assert [n["id"] for n in batch] == [3, 4]
    assert [n["id"] for n in client.publish_batch(items, idempotency_key="batch-1")] == [3, 4]
    titles = [n["title"] for n in client.feed("ann", roles=["owner"])["items"]]
    assert titles == ["b2", "b1", "Paid", "New booking"]


def test_a_users_feed_counts_read_and_archive(
    live: ServerThread, fresh: Tenant, make: Clients
) -> None:
    client = make(live.url, api_key=fresh.key)
    for i in range(3):
        client.publish("system", f"n{i}")
    client.publish("payment_failed", "owners only", audience={"roles": ["owner"]})
    client.publish("system", "for bob", audience={"users": ["bob"]})
    assert client.unread_count("ann") == {"count": 3, "more": False}
    assert client.unread_count("ann", roles=["owner"])["count"] == 4
    page = client.feed("ann", limit=2)
    assert [n["title"] for n in page["items"]] == ["n2", "n1"]
    assert page["next_cursor"] is not None
    rest = client.feed("ann", limit=2, cursor=page["next_cursor"])
    assert [n["title"] for n in rest["items"]] == ["n0"] and rest["next_cursor"] is None
    assert client.mark_read("ann", [1]) == {"unread": {"count": 2, "more": False}}
    assert client.archive("ann", [2])["unread"]["count"] == 1
    assert [n["id"] for n in client.feed("ann", status="archived")["items"]] == [2]
    assert [n["id"] for n in client.feed("ann", status="read")["items"]] == [1]
    assert client.mark_read("ann", all=True)["unread"]["count"] == 0
    assert client.unread_count("bob")["count"] == 4, "ann's reads are hers"
    assert [n["title"] for n in client.feed("bob", type="system", limit=1)["items"]] == ["for bob"]


def test_mint_token_is_a_working_stream_token(
    live: ServerThread, fresh: Tenant, make: Clients
) -> None:
    client = make(live.url, api_key=fresh.key)
    token = client.mint_token("ann", roles=["owner"], email="ann@example.com", ttl=120)
    assert isinstance(token, StreamToken)
    assert (token.tenant, token.user) == (fresh.id, "ann")
    assert 100 < (token.expires_at - token.expires_at.now(token.expires_at.tzinfo)).seconds <= 120
    r = httpx.get(
        f"{live.url}/v1/feed/unread-count",
        headers={"Authorization": f"Bearer {token.token}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text


def test_preferences_of_a_user_and_of_the_tenant(
    live: ServerThread, fresh: Tenant, make: Clients
) -> None:
    client = make(live.url, api_key=fresh.key)
    saved = client.set_preferences(
        "ann", {"types": {"payment_failed": {"email": False}}, "time_zone": "Europe/Berlin"}
    )
    assert saved["preferences"]["types"] == {"payment_failed": {"email": False}}
    assert saved["effective"]["types"]["payment_failed"]["email"] is False
    assert client.preferences("ann")["time_zone"] == "Europe/Berlin"
    assert client.preferences("bob")["preferences"]["types"] == {}
    defaults = client.set_tenant_preferences({"critical_types": ["payment_failed"]})
    assert defaults["critical_types"] == ["payment_failed"]
    assert client.tenant_preferences()["critical_types"] == ["payment_failed"]


def test_tenants_and_keys_with_the_operator_key(
    live: ServerThread, operator_key: str, make: Clients
) -> None:
    op = make(live.url, operator_key=operator_key)
    name = f"ops-{op.__class__.__name__.lower()}"
    tenant = op.create_tenant(name, "Bounce Ops")
    assert (tenant["id"], tenant["name"]) == (name, "Bounce Ops")
    assert name in [t["id"] for t in op.list_tenants()]
    key = op.create_key(name, name="backend", scopes=["publish", "tokens"])
    assert key["key"].startswith("tdg_") and key["scopes"] == ["publish", "tokens"]
    assert [k["id"] for k in op.list_keys(name)] == [key["id"]]
    assert "key" not in op.list_keys(name)[0], "the secret is shown once"
    host = make(live.url, api_key=key["key"])
    assert host.publish("system", "hello")["id"] == 1
    token = op.mint_token("ann", tenant=name)
    assert token.tenant == name
    assert op.revoke_key(key["id"])["revoked_at"] is not None
    with pytest.raises(ApiError) as refused:
        host.publish("system", "after revoke")
    assert (refused.value.status, refused.value.code) == (401, "key_revoked")
    with pytest.raises(ApiError) as twice:
        op.create_tenant(name, "again")
    assert twice.value.status == 409


def test_a_problem_becomes_an_api_error_with_its_fields_and_changes_nothing(
    live: ServerThread, fresh: Tenant, make: Clients
) -> None:
    client = make(live.url, api_key=fresh.key)
    with pytest.raises(ApiError) as bad:
        client.publish("Not A Type", "x")
    error = bad.value
    assert (error.status, error.code, error.title) == (
        422,
        "validation_failed",
        "Validation failed",
    )
    assert "type" in error.detail
    assert error.problem["status"] == 422 and error.type.endswith("validation_failed")
    assert str(error).startswith("422 validation_failed: ")
    with pytest.raises(ApiError) as long_key:
        client.publish("system", "x", idempotency_key="k" * 201)
    assert long_key.value.status == 422
    with pytest.raises(ApiError) as empty:
        client.publish_batch([])
    assert empty.value.status == 422
    with pytest.raises(ApiError) as zero:
        client.mark_read("ann", [0])
    assert zero.value.status == 422
    with pytest.raises(ApiError) as limit:
        client.feed("ann", limit=0)
    assert limit.value.status == 422
    with pytest.raises(ApiError) as cursor:
        client.feed("ann", cursor="not-ours")
    assert (cursor.value.status, cursor.value.code) == (400, "invalid_cursor")
    with pytest.raises(ApiError) as prefs:
        client.set_preferences("ann", {"channels": {"fax": True}})
    assert prefs.value.status == 422
    assert client.feed("ann")["items"] == [], "nothing was stored"
    assert client.preferences("ann")["preferences"]["channels"] == {}


def test_wrong_credentials_are_problems_too(
    live: ServerThread, fresh: Tenant, make: Clients
) -> None:
    with pytest.raises(ApiError) as nobody:
        make(live.url, api_key="tdg_nope_nope").publish("system", "x")
    assert (nobody.value.status, nobody.value.code) == (401, "invalid_credentials")
    with pytest.raises(ApiError) as not_operator:
        make(live.url, operator_key=fresh.key).list_tenants()
    assert not_operator.value.status == 401
    publish_only = make(live.url, operator_key="test-operator-key").create_key(
        fresh.id, scopes=["publish"]
    )
    with pytest.raises(ApiError) as scope:
        make(live.url, api_key=publish_only["key"]).feed("ann")
    assert (scope.value.status, scope.value.code) == (403, "insufficient_scope")


def test_a_call_without_its_credential_fails_before_any_request(make: Clients) -> None:
    client = make("http://127.0.0.1:9")  # nothing listens there; nothing is sent
    calls: list[tuple[str, tuple[Any, ...]]] = [
        ("publish", ("system", "x")),
        ("feed", ("ann",)),
        ("list_tenants", ()),
        ("create_key", ("t",)),
    ]
    for name, args in calls:
        with pytest.raises(ValueError, match="needs the client's"):
            getattr(client, name)(*args)
    with pytest.raises(ValueError, match="either ids or all"):
        client.mark_read("ann")
    with pytest.raises(TypeError, match="roles"):
        client.feed("ann", roles="owner")


def test_a_refused_cached_token_is_minted_again_once(
    live: ServerThread, fresh: Tenant, make: Clients
) -> None:
    client = make(live.url, api_key=fresh.key)
    later = datetime.now(UTC) + timedelta(hours=1)
    stale = StreamToken("not-a-valid-token", later, fresh.id, "ann")
    client.tokens.put(UserRef.of("ann"), stale)
    assert client.unread_count("ann") == {"count": 0, "more": False}
    assert client.tokens.get(UserRef.of("ann")) != stale, "the refused token was replaced"
