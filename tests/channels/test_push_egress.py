"""Internal hosts are out of reach of web push (issue 12, item 8), against a live server:

- endpoints whose host is not a valid DNS name on the allow-list are refused at subscribe time;
- with ``TIDINGS_PUSH_ENDPOINT_HOSTS='*'`` a name that resolves to loopback is accepted as a
  name but refused at connect time, after resolution, unless its network is allowed;
- the delivery log says the same for a host refused by policy as for a closed port.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.channels.conftest import (
    Device,
    PushService,
    bearer,
    channel_settings,
    start_server,
    token,
    wait_until,
)
from tests.support import ServerThread, Tenant, free_port, publish

pytestmark = pytest.mark.anyio


@pytest.fixture
def server(tmp_path: Path, push_service: PushService) -> Iterator[ServerThread]:
    """Any host name accepted ('*'); of the non-public networks only 127.0.0.2 is allowed."""
    srv = start_server(
        channel_settings(
            tmp_path,
            push_endpoint_hosts="*,127.0.0.2",
            push_allow_networks="127.0.0.2/32",
            push_ca_file=str(push_service.ca),
            push_max_attempts=1,
        )
    )
    try:
        yield srv
    finally:
        srv.stop()


REFUSED = [
    "https://127.0.0.1\\.googleapis.com/push/x",  # a WHATWG parser reads host 127.0.0.1
    "https://fcm.googleapis.com\\@127.0.0.1/push/x",
    "https://127.0.0.1/push/x",  # IP literals only when listed exactly, never through '*'
    "https://127.0.0.1:8443/push/x",
    "https://[::1]/push/x",
    "https://[::ffff:127.0.0.1]/push/x",
    "https://169.254.169.254/latest/meta-data",
    "https://2130706433/push/x",  # numeric spellings of 127.0.0.1 are not names either
    "https://0x7f000001/push/x",
    "https://127.1/push/x",
    "https://0177.0.0.1/push/x",
    "https://user@fcm.googleapis.com/push/x",
    "https://:pw@fcm.googleapis.com/push/x",
    "https://fcm.googleapis.com:99999/push/x",
    "https://fcm.googleapis.com:0/push/x",
    "https://fcm.googleapis.com./push/x",
    "https://fcm..googleapis.com/push/x",
    "https://-fcm.googleapis.com/push/x",
    "https://fcm_1.googleapis.com/push/x",
    "https://%31%32%37.0.0.1/push/x",
    "https://\uff46cm.googleapis.com/push/x",  # fullwidth letters: IDNA would fold them
    "https://127\u30020\u30020\u30021/push/x",  # ideographic full stops fold to dots
    "https://b\u00fccher.example/push/x",  # IDNs come as punycode from a browser
    "https://" + "a" * 64 + ".example/push/x",
    "https:///push/x",
    "http://fcm.googleapis.com/push/x",
]

ACCEPTED = [
    "https://fcm.googleapis.com/fcm/send/abc:def",
    "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
    "https://xn--bcher-kva.example/push/x",
    "https://localhost:8443/push/x",  # a name: its addresses are checked when connecting
    "https://127.0.0.2:8443/push/x",  # listed exactly
]


async def test_endpoints_that_are_not_valid_host_names_are_refused(
    server: ServerThread, tenant: Tenant
) -> None:
    url = f"{server.url}/v1/push/subscriptions"
    ann = token(tenant, "ann")
    keys = Device("k", "https://fcm.googleapis.com/x").subscription()["keys"]
    async with httpx.AsyncClient(timeout=10) as client:
        for endpoint in REFUSED:
            r = await client.post(
                url, json={"endpoint": endpoint, "keys": keys}, headers=bearer(ann)
            )
            assert r.status_code == 422, (endpoint, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["code"] == "invalid_subscription", (endpoint, r.text)
        assert (await client.get(url, headers=bearer(ann))).json() == {"subscriptions": []}
        for endpoint in ACCEPTED:
            r = await client.post(
                url, json={"endpoint": endpoint, "keys": keys}, headers=bearer(ann)
            )
            assert r.status_code == 201, (endpoint, r.text)
        listed = (await client.get(url, headers=bearer(ann))).json()["subscriptions"]
        assert len(listed) == len(ACCEPTED)


async def outcomes(
    client: httpx.AsyncClient, tenant: Tenant, seq: int, users: set[str]
) -> dict[str, dict[str, Any]]:
    """The final delivery-log entry (sent or failed) of each user's push of ``seq``."""
    found: dict[str, dict[str, Any]] = {}

    async def settled() -> bool:
        r = await client.get(f"{tenant.url}/v1/notifications/{seq}/deliveries", headers=tenant.auth)
        assert r.status_code == 200, r.text
        found.clear()
        for entry in r.json()["entries"]:
            if entry["status"] in ("sent", "failed"):
                found[entry["user"]] = entry
        return set(found) == users

    await wait_until(settled, timeout=20, what=f"push outcomes for {users}")
    return found


async def test_loopback_behind_a_name_is_refused_when_connecting_and_looks_like_a_closed_port(
    server: ServerThread, tenant: Tenant, push_service: PushService
) -> None:
    # ann's endpoint names "localhost": a valid name, accepted by '*', resolving to 127.0.0.1
    # where the push stand-in listens (its certificate covers "localhost"). Without the
    # connect-time check the push would be delivered there.
    ann_device = Device("ann", f"https://localhost:{push_service.port}/push/ann")
    push_service.devices["ann"] = ann_device
    # bob's endpoint is on an allowed network (127.0.0.2) but nothing listens on its port.
    bob_device = Device("bob", f"https://127.0.0.2:{free_port()}/push/bob")
    url = f"{server.url}/v1/push/subscriptions"
    async with httpx.AsyncClient(timeout=10) as client:
        for user, device in (("ann", ann_device), ("bob", bob_device)):
            r = await client.post(
                url, json=device.subscription(), headers=bearer(token(tenant, user))
            )
            assert r.status_code == 201, r.text
        sent = await publish(client, tenant, "Booking #9", audience={"users": ["ann", "bob"]})
        failed = await outcomes(client, tenant, sent["id"], {"ann", "bob"})
    assert failed["ann"]["status"] == "failed", failed["ann"]
    assert push_service.attempts["ann"] == 0, "the sender connected to loopback"
    assert push_service.received == []

    def shape(entry: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in entry.items() if k not in ("user", "target", "at")}

    assert shape(failed["ann"]) == shape(failed["bob"])
    assert failed["ann"]["reason"] == "gave_up"
    assert failed["ann"]["detail"]["error"] == "endpoint_unreachable"
