"""The push sender's egress rules as properties: the address classifier (hypothesis over
``ipaddress`` values, and the known edge cases), host-name validation, and the guarded network
backend connecting to the checked address over real loopback sockets."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.channels.egress import (
    BLOCKED_V4,
    BLOCKED_V6,
    AddressPolicy,
    GuardedBackend,
    embedded_v4,
    is_public,
    parse_networks,
)
from tidings.channels.webpush import HostRules, check_endpoint, is_hostname
from tidings.errors import ValidationFailed

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address

NOT_PUBLIC = [
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "0.1.2.3",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack metadata
    "169.254.0.1",
    "100.64.0.1",
    "100.100.100.200",  # Alibaba metadata (CGNAT range)
    "100.127.255.255",
    "192.0.0.192",  # Oracle metadata
    "168.63.129.16",  # Azure wire server
    "192.0.2.1",
    "198.18.0.1",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "fe80::1",
    "febf::1",
    "fc00::1",
    "fd00:ec2::254",  # AWS metadata over IPv6
    "fec0::1",  # deprecated site-local
    "ff02::1",
    "ff0e::1",
    "::ffff:127.0.0.1",  # IPv4-mapped forms of the above
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:100.64.0.1",
    "::ffff:0.0.0.0",
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::1",  # local-use NAT64
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2001::1",  # Teredo
    "2001:db8::1",
    "100::1",  # discard-only
    "3fff::1",
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "142.250.185.10",  # fcm.googleapis.com
    "100.63.255.255",  # just below CGNAT
    "100.128.0.0",  # just above
    "172.15.255.255",
    "172.32.0.0",
    "169.253.255.255",
    "2607:f8b0:4004:c07::5f",
    "2a00:1450:4001:82b::200a",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "2002:808:808::1",  # 6to4 of 8.8.8.8
]


@pytest.mark.parametrize("text", NOT_PUBLIC)
def test_known_internal_addresses_are_not_public(text: str) -> None:
    address = ipaddress.ip_address(text)
    assert not is_public(address)
    assert not AddressPolicy().permits(address)


@pytest.mark.parametrize("text", PUBLIC)
def test_known_public_addresses_are_public(text: str) -> None:
    assert is_public(ipaddress.ip_address(text))


def test_a_scoped_link_local_address_is_not_public() -> None:
    assert not is_public(ipaddress.ip_address("fe80::1%eth0"))
    assert not is_public(ipaddress.ip_address("2607:f8b0::1%eth0"))


v4s = st.ip_addresses(v=4)
v6s = st.ip_addresses(v=6)
anys = st.one_of(v4s, v6s)


@given(v4s)
def test_ipv6_forms_of_an_ipv4_address_are_judged_by_it(address: V4) -> None:
    mapped = V6(f"::ffff:{address}")
    nat64 = V6(int(V6("64:ff9b::")) | int(address))
    six_to_four = V6((0x2002 << 112) | (int(address) << 80) | 1)
    for form in (mapped, nat64, six_to_four):
        assert embedded_v4(form) == address
        assert is_public(form) == is_public(address)


@given(anys)
def test_public_implies_global_unicast(address: V4 | V6) -> None:
    """Nothing the standard library calls non-global, multicast, private, loopback, link-local,
    reserved or unspecified is public (an IPv6 form of an IPv4 address: judged by the latter)."""
    if not is_public(address):
        return
    subject = (embedded_v4(address) if isinstance(address, V6) else None) or address
    assert subject.is_global
    assert not (
        subject.is_multicast
        or subject.is_private
        or subject.is_loopback
        or subject.is_link_local
        or subject.is_reserved
        or subject.is_unspecified
    )


@st.composite
def inside(draw: st.DrawFn, networks: Iterable[Any]) -> tuple[Any, V4 | V6]:
    network = draw(st.sampled_from(list(networks)))
    offset = draw(st.integers(0, network.num_addresses - 1))
    return network, network.network_address + offset


INTERNAL = [
    *BLOCKED_V4,
    *BLOCKED_V6,
    ipaddress.ip_network("::1/128"),
    ipaddress.ip_network("fc00::/7"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("ff00::/8"),
    ipaddress.ip_network("::ffff:127.0.0.0/104"),
    ipaddress.ip_network("::ffff:10.0.0.0/104"),
    ipaddress.ip_network("::ffff:169.254.0.0/112"),
]


@given(inside(INTERNAL))
def test_every_address_of_an_internal_network_is_refused_unless_allowed(
    drawn: tuple[Any, V4 | V6],
) -> None:
    network, address = drawn
    assert not is_public(address)
    assert not AddressPolicy().permits(address)
    assert AddressPolicy([network]).permits(address)
    other = ipaddress.ip_network("192.0.2.0/24" if address.version == 6 else "2001:db8::/32")
    assert not AddressPolicy([other]).permits(address)


@given(v4s)
def test_allowing_an_ipv4_network_allows_its_mapped_form(address: V4) -> None:
    policy = AddressPolicy([ipaddress.ip_network(f"{address}/32")])
    assert policy.permits(address)
    assert policy.permits(V6(f"::ffff:{address}"))


@given(anys)
def test_the_policy_permits_exactly_public_addresses_by_default(address: V4 | V6) -> None:
    assert AddressPolicy().permits(address) == is_public(address)


def test_allow_networks_setting_is_parsed_and_checked() -> None:
    assert parse_networks(" 127.0.0.1/32, ::1 ,") == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    with pytest.raises(ValueError, match="localhost"):
        parse_networks("localhost")
    from tests.support import make_settings

    with pytest.raises(ValueError, match="not-a-network"):
        make_settings("/tmp", push_allow_networks="10.0.0.0/8,not-a-network")


# -- host names -------------------------------------------------------------------------------

LABEL = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\Z")
TOP = st.from_regex(r"\A[a-z]([a-z0-9-]{0,10}[a-z0-9])?\Z")


@given(st.lists(LABEL, max_size=4), TOP)
def test_rfc_1123_names_are_host_names(labels: list[str], top: str) -> None:
    assert is_hostname(".".join([*labels, top]))


@given(st.text(min_size=1, max_size=40))
def test_host_names_are_ascii_letters_digits_hyphens_and_dots(text: str) -> None:
    if is_hostname(text):
        assert set(text) <= set("abcdefghijklmnopqrstuvwxyz0123456789-.")
        assert not text.startswith((".", "-")) and not text.endswith((".", "-"))
        assert text.rsplit(".", 1)[-1][0].isalpha()


@given(anys)
def test_ip_addresses_are_never_host_names_and_star_does_not_cover_them(
    address: V4 | V6,
) -> None:
    assert not is_hostname(str(address))
    assert not HostRules("*").allows(str(address))
    assert HostRules(f"*,{address}").allows(str(address))


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://127.0.0.1\\.googleapis.com/",
        "https://fcm.googleapis.com\\@127.0.0.1/",
        "https://127.0.0.1/",
        "https://[::1]/",
        "https://2130706433/",
        "https://0x7f000001/",
        "https://127.1/",
        "https://u@fcm.googleapis.com/",
        "https://fcm.googleapis.com:99999/",
        "https://fcm.googleapis.com./",
        "https://\uff46cm.googleapis.com/",
        "https://fcm.googleapis.com\n/",
    ],
)
def test_check_endpoint_refuses_tricks(endpoint: str) -> None:
    with pytest.raises(ValidationFailed):
        check_endpoint(endpoint, HostRules("*"))


def test_suffix_rules_match_whole_labels() -> None:
    rules = HostRules("*.googleapis.com,push.example")
    assert rules.allows("fcm.googleapis.com")
    assert not rules.allows("evilgoogleapis.com")
    assert not rules.allows("googleapis.com.evil.example")
    assert rules.allows("push.example") and not rules.allows("x.push.example")


# -- the guarded backend over real loopback sockets ---------------------------------------------


@pytest.fixture
def listener() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


class Recording(httpcore.AnyIOBackend):
    """httpcore's own backend, noting which host it was asked to connect to."""

    def __init__(self) -> None:
        self.hosts: list[str] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        self.hosts.append(host)
        return await super().connect_tcp(host, port, timeout, local_address, socket_options)


@pytest.mark.anyio
async def test_the_backend_connects_to_the_checked_address_only(listener: int) -> None:
    inner = Recording()
    refusing = GuardedBackend(AddressPolicy(), inner)
    with pytest.raises(httpcore.ConnectError):
        await asyncio.wait_for(refusing.connect_tcp("localhost", listener, timeout=5), 10)
    assert inner.hosts == []  # refused before any connection was made
    allowing = GuardedBackend(AddressPolicy(parse_networks("127.0.0.0/8")), inner)
    stream = await asyncio.wait_for(allowing.connect_tcp("localhost", listener, timeout=5), 10)
    await stream.aclose()
    assert inner.hosts == ["127.0.0.1"]  # the resolved, checked address: not the name again


@pytest.mark.anyio
async def test_a_refused_host_and_a_closed_port_raise_the_same_error(listener: int) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.2", 0))
    port = int(closed.getsockname()[1])
    closed.close()
    backend = GuardedBackend(AddressPolicy(parse_networks("127.0.0.2/32")))
    with pytest.raises(httpcore.ConnectError):
        await asyncio.wait_for(backend.connect_tcp("127.0.0.2", port, timeout=5), 10)
    with pytest.raises(httpcore.ConnectError):
        await asyncio.wait_for(backend.connect_tcp("127.0.0.1", listener, timeout=5), 10)
    with pytest.raises(httpcore.ConnectError):
        await asyncio.wait_for(backend.connect_tcp("no-such-host.invalid", 443, timeout=5), 10)
