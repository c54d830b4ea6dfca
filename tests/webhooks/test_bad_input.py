"""Registration refuses bad input with a 4xx problem and changes nothing; an API key without
the ``admin`` scope gets 403; one tenant never sees another's endpoints or events."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support import ServerThread, create_tenant, free_port, make_settings
from tests.webhooks.conftest import Receiver, add_endpoint, operator
from tidings.webhooks.sender import Sender

BAD = [
    (
        {"url": "https://example.com/h", "event_types": ["notification.exploded"]},
        422,
        "unknown_event_type",
    ),
    ({"url": "https://example.com/h", "event_types": []}, 422, "validation_failed"),
    ({"url": "ftp://example.com/h", "event_types": ["push.sent"]}, 422, "invalid_webhook_url"),
    (
        {"url": "https://u:p@example.com/h", "event_types": ["push.sent"]},
        422,
        "invalid_webhook_url",
    ),
    ({"url": "http://10.0.0.7/h", "event_types": ["push.sent"]}, 422, "invalid_webhook_url"),
    (
        {"url": "http://169.254.169.254/latest", "event_types": ["push.sent"]},
        422,
        "invalid_webhook_url",
    ),
    (
        {"url": "https://example.com/" + "a" * 3000, "event_types": ["push.sent"]},
        422,
        "validation_failed",
    ),
    (
        {"url": "https://example.com/h", "event_types": ["push.sent"], "secret": "x"},
        422,
        "validation_failed",
    ),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD)
def test_bad_registrations_change_nothing(
    hook_server: ServerThread, body: dict[str, object], status: int, code: str
) -> None:
    tenant = create_tenant(hook_server.url, "jump-joy")
    r = httpx.post(f"{tenant.url}/v1/webhooks/endpoints", json=body, headers=tenant.auth)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code
    listed = httpx.get(f"{tenant.url}/v1/webhooks/endpoints", headers=tenant.auth).json()
    assert listed == {"endpoints": []}


def test_an_unknown_type_with_a_lone_surrogate_is_a_problem_too(hook_server: ServerThread) -> None:
    """The problem's detail names the unknown types as sent; a lone surrogate among them (a
    JSON escape UTF-8 cannot carry) is escaped in the answer, not a dropped connection."""
    tenant = create_tenant(hook_server.url, "jump-joy")
    body = b'{"url": "https://example.com/h", "event_types": ["push.sent", "x\\ud800y"]}'
    headers = {**tenant.auth, "Content-Type": "application/json"}
    r = httpx.post(f"{tenant.url}/v1/webhooks/endpoints", content=body, headers=headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "unknown_event_type"
    assert "x\\ud800y" in r.text
    listed = httpx.get(f"{tenant.url}/v1/webhooks/endpoints", headers=tenant.auth).json()
    assert listed == {"endpoints": []}


def test_loopback_needs_the_setting(server: ServerThread) -> None:
    """Without TIDINGS_WEBHOOK_ALLOW_NETWORKS, loopback is refused at registration."""
    tenant = create_tenant(server.url, "jump-joy")
    for url in ("http://127.0.0.1:9/h", "http://localhost:9/h", "http://[::1]:9/h"):
        body = {"url": url, "event_types": ["push.sent"]}
        r = httpx.post(f"{tenant.url}/v1/webhooks/endpoints", json=body, headers=tenant.auth)
        assert r.json()["code"] == "invalid_webhook_url", url


def test_keys_without_admin_get_403(hook_server: ServerThread, receiver: Receiver) -> None:
    tenant = create_tenant(hook_server.url, "jump-joy", scopes=["publish", "tokens"])
    body = {"url": f"{receiver.url}/h", "event_types": ["push.sent"]}
    for method, path in (("POST", "/endpoints"), ("GET", "/endpoints"), ("GET", "/log")):
        r = httpx.request(method, f"{tenant.url}/v1/webhooks{path}", json=body, headers=tenant.auth)
        assert r.status_code == 403 and r.json()["code"] == "insufficient_scope"
    found = operator(hook_server.url, "GET", "/v1/admin/tenants/jump-joy/webhooks/endpoints")
    assert found.json() == {"endpoints": []}


def test_tenants_never_meet(hook_server: ServerThread, receiver: Receiver) -> None:
    one = create_tenant(hook_server.url, "jump-joy")
    two = create_tenant(hook_server.url, "bounce-bros")
    mine = add_endpoint(one, receiver, "/one", ["push.sent"])
    for method in ("GET", "PATCH", "DELETE"):
        r = httpx.request(
            method,
            f"{two.url}/v1/webhooks/endpoints/{mine['id']}",
            json={"enabled": False} if method == "PATCH" else None,
            headers=two.auth,
        )
        assert r.status_code == 404 and r.json()["code"] == "webhook_endpoint_not_found"
    r = httpx.post(
        f"{two.url}/v1/webhooks/events/msg_x/replay",
        json={"endpoint_id": mine["id"]},
        headers=two.auth,
    )
    assert r.status_code == 404 and r.json()["code"] == "webhook_event_not_found"
    r = operator(hook_server.url, "GET", "/v1/admin/tenants/nobody/webhooks/endpoints")
    assert r.status_code == 404 and r.json()["code"] == "tenant_not_found"


def test_too_many_endpoints(hook_server: ServerThread, receiver: Receiver) -> None:
    tenant = create_tenant(hook_server.url, "jump-joy")
    most = hook_server.settings.webhook_max_endpoints
    for i in range(most):
        add_endpoint(tenant, receiver, f"/{i}", ["push.sent"])
    body = {"url": f"{receiver.url}/x", "event_types": ["push.sent"]}
    r = httpx.post(f"{tenant.url}/v1/webhooks/endpoints", json=body, headers=tenant.auth)
    assert r.status_code == 409 and r.json()["code"] == "too_many_webhooks"


@pytest.mark.anyio
async def test_the_sender_checks_addresses_at_connect_time(
    receiver: Receiver, tmp_path: Path
) -> None:
    """A name may resolve anywhere later: the decisive check is made when connecting. Without
    TIDINGS_WEBHOOK_ALLOW_NETWORKS a loopback receiver is never reached; a closed port and a
    refused address look the same (``unreachable``)."""
    refusing = Sender(make_settings(str(tmp_path)))
    allowing = Sender(make_settings(str(tmp_path), webhook_allow_networks="127.0.0.0/8"))
    try:
        refused = await refusing.post(f"{receiver.url}/x", {}, b"{}")
        assert (refused.ok, refused.status, refused.error) == (False, None, "unreachable")
        assert receiver.got == []
        closed = await allowing.post(f"http://127.0.0.1:{free_port()}/x", {}, b"{}")
        assert closed.error == "unreachable"
        reached = await allowing.post(f"{receiver.url}/x", {}, b"{}")  # unsigned: 401
        assert (reached.ok, reached.status, reached.error) == (False, 401, "http_401")
        assert len(receiver.got) == 1
    finally:
        await refusing.close()
        await allowing.close()


def test_bad_changes_change_nothing(hook_server: ServerThread, receiver: Receiver) -> None:
    tenant = create_tenant(hook_server.url, "jump-joy")
    endpoint = add_endpoint(tenant, receiver, "/p", ["push.sent"])
    url = f"{tenant.url}/v1/webhooks/endpoints/{endpoint['id']}"
    for body, code in (
        ({"event_types": ["push.sent", "nope.never"]}, "unknown_event_type"),
        ({"url": "gopher://example.com/"}, "invalid_webhook_url"),
        ({"url": "http://192.168.1.1/"}, "invalid_webhook_url"),
        ({"enabled": "sometimes"}, "validation_failed"),
    ):
        r = httpx.patch(url, json=body, headers=tenant.auth)
        assert r.status_code == 422 and r.json()["code"] == code, (body, r.text)
    found = httpx.get(url, headers=tenant.auth).json()
    assert {k: found[k] for k in ("url", "event_types", "enabled")} == {
        "url": f"{receiver.url}/p",
        "event_types": ["push.sent"],
        "enabled": True,
    }
