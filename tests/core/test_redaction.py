"""Credentials never reach a log line, however the client percent-encodes them (issue 12, item
6): a property over encodings of the parameter name and value, and the real access log of a
running server for ``/v1/stream?access%5Ftoken=…`` and ``/v1/unsubscribe?token=…``."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.support import SECRET, ServerThread, access_lines, make_settings
from tidings import auth
from tidings.channels import unsubscribe
from tidings.logs import REDACTED, RedactCredentials, redact

ACCESS_FORMAT = '%s - "%s %s HTTP/%s" %d'


def _jwt(sub: str = "ann") -> str:
    token, _ = auth.mint(SECRET, tenant="jump-joy", user=sub, roles=[], ttl=600)
    return token


def _decoded(text: str) -> str:
    for _ in range(4):
        text = unquote(text)
    return text


@st.composite
def encoded(draw: st.DrawFn, text: str) -> str:
    """``text`` with any of its characters percent-encoded (upper or lower hex), once or twice."""
    rnd = draw(st.randoms(use_true_random=False))
    out = []
    for char in text:
        how = rnd.choice(["plain", "plain", "upper", "lower", "twice"])
        if how == "plain":
            out.append(char)
            continue
        hexed = "".join(f"%{b:02X}" for b in char.encode())
        if how == "lower":
            hexed = hexed.lower()
        elif how == "twice":
            hexed = hexed.replace("%", "%25")
        out.append(hexed)
    return "".join(out)


NAMES = ["access_token", "token", "api_key", "Access_Token", "password", "id_token"]


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    name=st.sampled_from(NAMES),
    sub=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12),
    before=st.sampled_from(["", "last_event_id=5&", "x=1&"]),
    after=st.sampled_from(["", "&x=1", "&last_event_id=7"]),
    path=st.sampled_from(["/v1/stream", "/v1/unsubscribe", "/v1/feed"]),
)
@example(data=None, name="access_token", sub="ann", before="", after="", path="/v1/stream")
def test_no_encoding_of_a_token_parameter_survives_redaction(
    data: st.DataObject | None, name: str, sub: str, before: str, after: str, path: str
) -> None:
    token = _jwt(sub)
    if data is None:  # the reported bypass
        spelled_name, spelled_value = "access%5Ftoken", token
    else:
        spelled_name = data.draw(encoded(name))
        spelled_value = data.draw(encoded(token))
    line = redact(f"{path}?{before}{spelled_name}={spelled_value}{after}")
    _, payload, signature = token.split(".")
    for form in (line, _decoded(line)):
        assert signature not in form and payload not in form, line
    assert f"{spelled_name}={REDACTED}" in line
    # Ordinary parameters and the path stay readable.
    assert line.startswith(f"{path}?{before}")
    assert line.endswith(after)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), name=st.sampled_from(["q", "next", "cursor", "t"]))
def test_a_jwt_under_any_name_or_in_a_path_is_redacted(data: st.DataObject, name: str) -> None:
    token = _jwt()
    spelled = data.draw(encoded(token))
    for line in (redact(f"/v1/feed?{name}={spelled}"), redact(f"/v1/things/{spelled}/x")):
        assert token.split(".")[2] not in _decoded(line), line
        assert REDACTED in line


def test_credential_names_keep_other_values_and_plain_lines_unchanged() -> None:
    assert redact("/v1/feed?limit=20&cursor=abc") == "/v1/feed?limit=20&cursor=abc"
    assert redact("10.11.12.13:5000 - GET /healthz") == "10.11.12.13:5000 - GET /healthz"
    assert redact("/v1/unsubscribe?token=opaque-value") == f"/v1/unsubscribe?token={REDACTED}"


def test_the_access_log_of_a_running_server_holds_no_token(tmp_path: Path) -> None:
    """A real uvicorn access log: the stream token as ``access%5Ftoken`` and an unsubscribe
    token (which does not expire) are redacted."""
    srv = ServerThread(make_settings(str(tmp_path)))
    access = logging.getLogger("uvicorn.access")
    try:
        with access_lines() as lines:
            srv.start()
            try:
                stream_token = _jwt()
                unsub = unsubscribe.make_token(SECRET, "jump-joy", "ann")
                with httpx.Client(base_url=srv.url, timeout=10) as client:
                    client.get(f"/v1/stream?access%5Ftoken={stream_token}&last_event_id=x")
                    client.get(f"/v1/unsubscribe?token={unsub}")
                    client.get("/healthz?marker=done")
                assert any("marker=done" in line for line in lines), lines
                joined = "\n".join(lines)
                for secret in (stream_token, unsub):
                    assert secret.split(".")[2] not in _decoded(joined), joined
                assert "access%5Ftoken=[redacted]" in joined
                assert "/v1/unsubscribe?token=[redacted]" in joined
            finally:
                srv.stop()
    finally:
        for f in list(access.filters):
            if isinstance(f, RedactCredentials):
                access.removeFilter(f)


@pytest.mark.parametrize(
    "path",
    ["/v1/stream?access%5Ftoken={t}", "/v1/stream?%61ccess_token={t}", "/v1/unsubscribe?token={t}"],
)
def test_access_log_record_is_redacted_by_the_filter(path: str) -> None:
    token = _jwt()
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        ACCESS_FORMAT,
        ("127.0.0.1:5000", "GET", path.format(t=token), "1.1", 200),
        None,
    )
    RedactCredentials().filter(record)
    assert token.split(".")[2] not in record.getMessage()
