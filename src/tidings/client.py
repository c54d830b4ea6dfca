"""The Python SDK.

- :class:`Publisher`: publish with retries, exponential backoff with jitter and an automatic
  ``Idempotency-Key`` per logical publish, reused on every retry, so a retried publish is
  never doubled.
- :func:`subscribe`: an async iterator of :class:`Event` over ``GET /v1/stream`` that
  reconnects by itself and resumes from the last id it yielded.

Example::

    async with Publisher("http://127.0.0.1:8000", api_key) as pub:
        n = await pub.publish(type="booking_created", title="New booking")

    async for event in subscribe("http://127.0.0.1:8000", token=token):
        print(event.event, event.data)
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx
import orjson

__all__ = ["ApiError", "Event", "Publisher", "parse_sse", "subscribe"]

RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


class ApiError(Exception):
    """A problem response from tidings (``status``, ``code``, ``detail``)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.code = str(problem.get("code", "unknown"))
        super().__init__(f"{status} {self.code}: {problem.get('detail', '')}")


@dataclass(frozen=True, slots=True)
class Event:
    """One SSE event. ``id`` is the seq for notifications, else ``None``."""

    event: str
    data: Any
    id: int | None = None


def backoff(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap, base * (2**attempt)))


class Publisher:
    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        retries: int = 5,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )
        self.retries = retries

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def publish(
        self,
        *,
        type: str,
        title: str,
        body: str = "",
        data: dict[str, Any] | None = None,
        link: str | None = None,
        audience: dict[str, list[str]] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"type": type, "title": title, "body": body, "data": data or {}}
        if link:
            payload["link"] = link
        if audience:
            payload["audience"] = audience
        return await self._post("/v1/notifications", payload, idempotency_key)

    async def publish_batch(
        self, items: list[dict[str, Any]], *, idempotency_key: str | None = None
    ) -> list[dict[str, Any]]:
        result = await self._post(
            "/v1/notifications/batch", {"notifications": items}, idempotency_key
        )
        return list(result["notifications"])

    async def _post(self, path: str, payload: dict[str, Any], key: str | None) -> dict[str, Any]:
        headers = {"Idempotency-Key": key or uuid.uuid4().hex}
        attempt = 0
        while True:
            try:
                response = await self._client.post(path, json=payload, headers=headers)
            except httpx.TransportError:
                if attempt >= self.retries:
                    raise
            else:
                if response.status_code < 300:
                    result: dict[str, Any] = response.json()
                    return result
                if response.status_code not in RETRYABLE or attempt >= self.retries:
                    raise ApiError(response.status_code, _problem(response))
                retry_after = response.headers.get("retry-after", "")
                if retry_after.isdigit():
                    await asyncio.sleep(min(float(retry_after), 30.0))
                    attempt += 1
                    continue
            await asyncio.sleep(backoff(attempt))
            attempt += 1


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
        return body if isinstance(body, dict) else {"detail": str(body)}
    except ValueError:
        return {"detail": response.text[:200]}


async def parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str, str | None]]:
    """Parse SSE lines into ``(event, data, id)``; comments and ``retry`` are skipped."""
    event, ident = "message", None
    data: list[str] = []
    async for line in lines:
        if line == "":
            if data:
                yield event, "\n".join(data), ident
            event, data, ident = "message", [], None
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            ident = value


async def subscribe(
    url: str,
    *,
    token: str | None = None,
    get_token: Callable[[], Awaitable[str]] | None = None,
    last_event_id: int | None = None,
    max_attempts: int | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[Event]:
    """Yield events forever, reconnecting with backoff and resuming from the last id.

    ``ready``/``reset`` snapshots, ``read``/``archived`` and ``notification`` events are yielded;
    ``expired`` makes it fetch a new token with ``get_token`` (when given) and reconnect.
    Notifications with an id already yielded are dropped.
    """
    last = last_event_id
    attempt = 0
    current = token
    async with httpx.AsyncClient(
        base_url=url.rstrip("/"), timeout=httpx.Timeout(10.0, read=60.0), transport=transport
    ) as client:
        while max_attempts is None or attempt < max_attempts:
            if current is None and get_token is not None:
                current = await get_token()
            params = {} if last is None else {"last_event_id": str(last)}
            headers = {"Authorization": f"Bearer {current}"} if current else {}
            renew = False
            try:
                async with client.stream(
                    "GET", "/v1/stream", params=params, headers=headers
                ) as response:
                    if response.status_code == 401 and get_token is not None:
                        current, renew = None, True
                    elif response.status_code != 200:
                        await response.aread()
                        problem = _problem(response)
                        if response.status_code not in RETRYABLE:
                            raise ApiError(response.status_code, problem)
                    else:
                        async for name, raw, ident in parse_sse(response.aiter_lines()):
                            data = orjson.loads(raw) if raw else None
                            seq = int(ident) if ident and ident.isdigit() else None
                            if name == "notification":
                                if seq is not None and last is not None and seq <= last:
                                    continue
                                last = seq if seq is not None else last
                            elif name in ("ready", "reset"):
                                attempt = 0
                                if seq is not None and (name == "reset" or last is None):
                                    last = seq
                            elif name == "expired":
                                current, renew = None, True
                            yield Event(name, data, seq)
            except (httpx.TransportError, httpx.StreamError):
                pass
            if renew and get_token is None:
                return
            await asyncio.sleep(0 if renew else backoff(attempt))
            attempt += 1
