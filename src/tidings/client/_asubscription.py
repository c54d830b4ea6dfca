"""Subscriptions to ``GET /v1/stream``: :class:`AsyncSubscription` and the older asyncio
:func:`subscribe`. They resume as :class:`._sse.Resume` says and get tokens from a source that
either renews them (a user's, minted with the API key) or ends the iteration (a given token).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from types import TracebackType
from typing import Self

import httpx

from tidings.client._base import DEFAULT_TIMEOUT, STREAM_READ_TIMEOUT, failure, user_agent
from tidings.client._retry import RETRYABLE, backoff
from tidings.client._sse import Decoder, Event, Resume

TokenSource = Callable[[bool], Awaitable[str | None]]


def fixed(token: str | None) -> TokenSource:
    async def source(fresh: bool) -> str | None:
        return None if fresh else token

    return source


class AsyncSubscription:
    """An async iterator of :class:`Event` that reconnects by itself and resumes from the last
    id it yielded (``Last-Event-ID``). Close it with ``aclose()`` or ``async with``.

    After ``max_attempts`` connection attempts in a row that did not reach ``ready`` it raises
    the last error; a problem answer that retrying cannot fix (400, 401, 403) is raised at once.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: TokenSource,
        last_event_id: int | None,
        max_attempts: int | None,
        timeout: float,
        read_timeout: float,
        *,
        owns_http: bool = False,
    ) -> None:
        self._http = http
        self._token = token
        self._resume = Resume(last_event_id)
        self._max_attempts = max_attempts
        self._timeout = httpx.Timeout(timeout, read=read_timeout)
        self._owns_http = owns_http
        self._events = self._run()

    @property
    def last_event_id(self) -> int | None:
        """The seq of the last notification yielded (where a later resume would start)."""
        return self._resume.last_event_id

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        return await self._events.__anext__()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._events.aclose()
        if self._owns_http:
            await self._http.aclose()

    async def _run(self) -> AsyncGenerator[Event, None]:
        resume, renew, fresh = self._resume, False, False
        last_error: Exception | None = None
        refused: Exception | None = None
        base = 0.5
        while self._max_attempts is None or resume.failures < self._max_attempts:
            resume.failures += 1
            delay: float | None = None
            try:
                token = await self._token(renew)  # a user's: minted (retried) when due
                if token is None:  # the given token expired or was refused: nothing renews it
                    if refused is not None:
                        raise refused
                    return
                fresh, renew = renew, False
                async with self._http.stream(
                    "GET", "/v1/stream", headers=resume.headers(token), timeout=self._timeout
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                        retry_after, last_error = failure(response)
                        if response.status_code == 401 and not fresh:
                            renew, refused = True, last_error
                        elif response.status_code not in RETRYABLE:
                            raise last_error
                        delay = retry_after
                    else:
                        refused = None
                        decoder = Decoder()
                        async for line in response.aiter_lines():
                            done = decoder.feed(line)
                            event = resume.accept(*done) if done else None
                            if event is not None:
                                yield event
                        base = (decoder.retry_ms or 500) / 1000
                        renew, resume.renew = resume.renew, False
            except (httpx.TransportError, httpx.StreamError) as error:
                last_error = error
            if renew:
                continue
            await asyncio.sleep(delay if delay is not None else backoff(resume.failures, base))
        if last_error is not None:
            raise last_error


def subscribe(
    url: str,
    *,
    token: str | None = None,
    get_token: Callable[[], Awaitable[str]] | None = None,
    last_event_id: int | None = None,
    max_attempts: int | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncSubscription:
    """Events of ``GET /v1/stream`` with ``token``; on expiry a new one from ``get_token``
    (without it, iteration ends). Prefer :meth:`AsyncClient.subscribe`."""
    state = {"token": token}

    async def source(fresh: bool) -> str | None:
        if (fresh or state["token"] is None) and get_token is not None:
            state["token"] = await get_token()
        elif fresh:
            return None
        return state["token"] or ""  # none: the server answers 401, raised as ApiError

    http = httpx.AsyncClient(
        base_url=url.rstrip("/"), transport=transport, headers={"User-Agent": user_agent()}
    )
    return AsyncSubscription(
        http,
        source,
        last_event_id,
        max_attempts,
        DEFAULT_TIMEOUT,
        STREAM_READ_TIMEOUT,
        owns_http=True,
    )
