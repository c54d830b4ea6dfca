"""The SDK's pure parts: the SSE decoder, the resume rule, the token cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.support import ServerThread, Tenant
from tidings.client import Client, StreamToken
from tidings.client._sse import Decoder, Resume
from tidings.client._tokens import TokenCache, UserRef


def test_the_decoder_reads_frames_and_skips_comments() -> None:
    decoder = Decoder()
    lines = ["retry: 500", "", ": ping", "", "id: 3", "event: notification", 'data: {"a":1}', ""]
    done = [d for d in map(decoder.feed, lines) if d is not None]
    assert done == [("notification", '{"a":1}', "3")]
    assert decoder.retry_ms == 500


def test_resume_never_yields_a_notification_twice_and_sends_where_it_is() -> None:
    resume = Resume(None)
    assert "Last-Event-ID" not in resume.headers("t")
    ready = resume.accept("ready", '{"latest_seq": 2}', "2")
    assert ready is not None and resume.last_event_id == 2, "live from the latest seq"
    assert resume.accept("notification", '{"id": 2}', "2") is None
    assert resume.accept("notification", '{"id": 3}', "3") is not None
    assert resume.accept("notification", '{"id": 3}', "3") is None
    assert resume.accept("notification", '{"id": 1}', "1") is None
    assert resume.headers("t") == {
        "Accept": "text/event-stream",
        "Authorization": "Bearer t",
        "Last-Event-ID": "3",
    }
    assert resume.accept("ready", "{}", "9") is not None and resume.last_event_id == 3
    assert resume.accept("reset", "{}", "20") is not None and resume.last_event_id == 20
    assert resume.accept("read", '{"ids": [4]}', None) is not None
    assert resume.accept("expired", "{}", None) is not None and resume.renew


def _token(seconds: float) -> StreamToken:
    return StreamToken("jwt", datetime.now(UTC) + timedelta(seconds=seconds), "t", "ann")


def test_the_token_cache_keeps_a_token_until_near_its_expiry() -> None:
    cache = TokenCache()
    ann, owner = UserRef.of("ann"), UserRef.of("ann", ["owner"])
    cache.put(ann, _token(900))
    assert cache.get(ann) is not None and cache.get(owner) is None, "roles are part of the key"
    assert UserRef.of("ann", ["b", "a", "a"]) == UserRef.of("ann", ["a", "b"])
    cache.put(owner, _token(0.4))
    assert cache.get(owner) is None, "a token about to expire is not handed out"
    cache.drop(ann)
    assert cache.get(ann) is None


class Counting(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


def test_calls_for_a_user_share_one_minted_token(live: ServerThread, fresh: Tenant) -> None:
    transport = Counting()
    with Client(live.url, api_key=fresh.key, transport=transport) as client:
        client.feed("ann")
        client.unread_count("ann")
        client.mark_read("ann", all=True)
        client.feed("ann", roles=["owner"])
    assert transport.paths.count("/v1/tokens") == 2, transport.paths
