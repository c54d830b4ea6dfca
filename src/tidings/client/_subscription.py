"""The blocking :class:`Subscription` to ``GET /v1/stream`` (the mirror of
:class:`._asubscription.AsyncSubscription`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Self

import httpx

from tidings.client._base import failure
from tidings.client._retry import RETRYABLE, backoff
from tidings.client._sse import Decoder, Event, Resume

TokenSource = Callable[[bool], str | None]


def fixed(token: str | None) -> TokenSource:
    def source(fresh: bool) -> str | None:
        return None if fresh else token

    return source


class Subscription:
    """An iterator of :class:`Event` that reconnects by itself and resumes from the last id it
    yielded (``Last-Event-ID``). Close it with ``close()`` or ``with``.

    After ``max_attempts`` connection attempts in a row that did not reach ``ready`` it raises
    the last error; a problem answer that retrying cannot fix (400, 401, 403) is raised at once.
    """

    def __init__(
        self,
        http: httpx.Client,
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

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Event:
        return next(self._events)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._events.close()
        if self._owns_http:
            self._http.close()

    def _run(self) -> Generator[Event, None, None]:
        resume, renew, fresh = self._resume, False, False
        last_error: Exception | None = None
        refused: Exception | None = None
        base = 0.5
        while self._max_attempts is None or resume.failures < self._max_attempts:
            resume.failures += 1
            delay: float | None = None
            try:
                token = self._token(renew)  # a user's: minted (retried) when due
                if token is None:  # the given token expired or was refused: nothing renews it
                    if refused is not None:
                        raise refused
                    return
                fresh, renew = renew, False
                with self._http.stream(
                    "GET", "/v1/stream", headers=resume.headers(token), timeout=self._timeout
                ) as response:
                    if response.status_code != 200:
                        response.read()
                        retry_after, last_error = failure(response)
                        if response.status_code == 401 and not fresh:
                            renew, refused = True, last_error
                        elif response.status_code not in RETRYABLE:
                            raise last_error
                        delay = retry_after
                    else:
                        refused = None
                        decoder = Decoder()
                        for line in response.iter_lines():
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
            time.sleep(delay if delay is not None else backoff(resume.failures, base))
        if last_error is not None:
            raise last_error
