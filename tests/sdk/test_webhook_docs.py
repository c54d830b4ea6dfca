"""docs/webhooks.md, "Verifying a delivery": its Python receiver (a FastAPI app, driven in
process: its answers are finite) and its TypeScript receiver (transpiled, a real node:http
server on a loopback port) take signed deliveries, handle a retried one once, and answer 400
to altered, stale, unsigned and foreign ones."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.sdk.node import host_app, transpile
from tests.support import free_port, require_binary
from tidings.client import sign_webhook

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()
NEW = "whsec_" + base64.b64encode(b"n" * 32).decode()
FOREIGN = "whsec_" + base64.b64encode(b"f" * 32).decode()


def block(language: str) -> str:
    text = DOC.read_text()
    section = text[text.index("## Verifying a delivery") :]
    end = section.find("\n## ")  # the next section, if any
    section = section if end < 0 else section[: end + 1]
    found = re.findall(rf"^```{language}\n(.*?)^```", section, re.S | re.M)
    assert len(found) == 1, f"one {language} block in the section"
    return str(found[0])


def delivery(
    msg_id: str, data: dict[str, Any], *, secret: str = NEW, age: int = 0
) -> tuple[dict[str, str], bytes]:
    body = json.dumps(
        {"type": "notification.read", "timestamp": "2026-11-26T20:00:00Z", "data": data}
    ).encode()
    at = int(time.time()) - age
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(at),
        "webhook-signature": sign_webhook(secret, msg_id, at, body),
    }
    return headers, body


Post = Callable[[dict[str, str], bytes], Awaitable[tuple[int, str]]]


async def exercise(post: Post) -> None:
    """The same deliveries for either receiver, and the answers the section promises."""
    headers, body = delivery("msg_1", {"user": "ann", "ids": [7]})
    assert await post(headers, body) == (204, "")
    assert await post(headers, body) == (204, "")  # the retry: answered, handled once (see output)
    by_old = delivery("msg_2", {"user": "bo", "ids": [8]}, secret=OLD)
    assert await post(*by_old) == (204, "")  # signed with the secret being rotated out
    assert await post(headers, body.replace(b"ann", b"eve")) == (400, "refused: invalid_signature")
    assert await post(*delivery("msg_3", {}, secret=FOREIGN)) == (400, "refused: invalid_signature")
    assert await post(*delivery("msg_4", {}, age=600)) == (400, "refused: timestamp_too_old")
    unsigned = {k: v for k, v in headers.items() if k != "webhook-signature"}
    assert await post(unsigned, body) == (400, "refused: missing_header")


@pytest.mark.anyio
async def test_the_python_receiver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDINGS_WEBHOOK_SECRET", f"{NEW} {OLD}")
    handled: list[str] = []
    scope: dict[str, Any] = {"__name__": "receiver", "print": lambda *a: handled.append(repr(a))}
    exec(compile(block("python"), "<docs/webhooks.md>", "exec"), scope)
    transport = httpx.ASGITransport(app=scope["app"])
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:

        async def post(headers: dict[str, str], body: bytes) -> tuple[int, str]:
            answer = await client.post("/webhooks/tidings", headers=headers, content=body)
            return answer.status_code, answer.text

        await exercise(post)
    assert handled == [
        repr(("notification.read", {"user": "ann", "ids": [7]})),
        repr(("notification.read", {"user": "bo", "ids": [8]})),
    ]


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    node = require_binary("node", "nodejs")
    app = host_app(tmp_path)
    (app / "receiver.mjs").write_text(transpile(block("ts")))
    port = free_port()
    env = {**os.environ, "PORT": str(port), "TIDINGS_WEBHOOK_SECRET": f"{NEW} {OLD}"}
    proc = subprocess.Popen(
        [node, "receiver.mjs"],
        cwd=app,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/webhooks/tidings"
    try:
        deadline = time.monotonic() + 30
        while True:  # until it listens (bounded)
            assert proc.poll() is None, proc.communicate()[1]
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the receiver did not listen within 30 s"
                time.sleep(0.05)
        yield url, proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.anyio
async def test_the_typescript_receiver(receiver: tuple[str, subprocess.Popen[str]]) -> None:
    url, proc = receiver
    async with httpx.AsyncClient(timeout=10) as client:

        async def post(headers: dict[str, str], body: bytes) -> tuple[int, str]:
            answer = await client.post(url, headers=headers, content=body)
            return answer.status_code, answer.text

        await exercise(post)
    proc.kill()
    out, _ = proc.communicate(timeout=10)
    assert out.splitlines() == [
        'notification.read {"user":"ann","ids":[7]}',
        'notification.read {"user":"bo","ids":[8]}',
    ]
