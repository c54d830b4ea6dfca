"""The booking dashboard's /sse/notifications through the shipped nginx config: proxied (not
the public side's 404), unbuffered, and with its CORS headers for an allowed origin."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.cluster.test_deploy import shipped_nginx
from tests.support import create_tenant

pytestmark = pytest.mark.nginx
ORIGIN = "https://app.example.com"


@pytest.mark.timeout(60)
def test_the_compatible_stream_is_proxied_unbuffered(tmp_path: Path) -> None:
    with shipped_nginx(tmp_path, cors_origins=ORIGIN) as (srv, base, _):
        tenant = create_tenant(srv.url, "jump-joy")
        params = {"token": tenant.token("ann")}
        with (
            httpx.Client(verify=False, timeout=10) as client,
            client.stream(
                "GET", f"{base}/sse/notifications", params=params, headers={"Origin": ORIGIN}
            ) as stream,
        ):
            assert stream.status_code == 200
            assert stream.headers["access-control-allow-origin"] == ORIGIN
            lines = stream.iter_lines()
            for line in lines:
                if line == 'data: {"type":"connected"}':
                    break
            published = time.monotonic()
            r = client.post(
                f"{srv.url}/api/sse/broadcast",
                json={"tenantId": "jump-joy", "notification": {"title": "Through nginx"}},
                headers=tenant.auth,
            )
            assert r.status_code == 200, r.text
            for line in lines:
                if line.startswith("data: ") and "Through nginx" in line:
                    break
            assert time.monotonic() - published < 2, "the stream was buffered"
