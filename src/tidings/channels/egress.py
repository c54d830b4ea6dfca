"""Where the push sender may connect: public addresses only, checked after DNS resolution.

A push endpoint is a URL a user hands us, so the sender must not become a way into the
deployment's own network (SSRF). The host names an endpoint may use are checked when the
subscription is stored (:mod:`tidings.channels.webpush`); this module is the second, decisive
check, made **at connect time**:

- :func:`is_public` classifies one address. Not public: loopback, unspecified, private
  (RFC 1918, ULA ``fc00::/7``), link-local (``169.254/16``, ``fe80::/10``, with the cloud
  metadata services on ``169.254.169.254`` and ``fd00:ec2::254``), CGNAT (``100.64/10``),
  multicast, reserved and documentation ranges, the other IANA special-purpose blocks that are
  not globally reachable, and well-known metadata addresses on public ranges
  (``168.63.129.16``). IPv6 forms that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``,
  NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) are judged by that IPv4 address; any other IPv6
  address outside global unicast ``2000::/3`` is not public.
- :class:`AddressPolicy` adds the operator's explicit exceptions
  (``TIDINGS_PUSH_ALLOW_NETWORKS``, CIDRs; e.g. a push service on a private network, or tests).
- :class:`GuardedBackend` is an ``httpcore`` network backend that resolves the host itself,
  keeps only the permitted addresses and connects to one of **those** IP addresses. TLS SNI,
  certificate checks and the ``Host`` header still use the URL's host name (httpcore passes it to
  ``start_tls`` separately), so the address that was checked is the address connected to and a
  DNS answer that changes between check and connect (rebinding) cannot slip through.

A refusal raises ``httpcore.ConnectError``, the same error as a closed port, so callers cannot
tell the two apart (and must not: the delivery log would become a port scanner).

:func:`default_trust` is the TLS context both senders verify public endpoints with.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from collections.abc import Iterable, Sequence
from typing import Any

import httpcore
import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

#: IPv4 blocks that are never a push service (IANA special-purpose registry: the ones not
#: globally reachable, plus multicast and the reserved/broadcast block).
BLOCKED_V4: tuple[ipaddress.IPv4Network, ...] = tuple(
    _V4(n)
    for n in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # CGNAT (RFC 6598); also Alibaba's metadata 100.100.100.200
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local; AWS/GCP/Azure/OpenStack metadata 169.254.169.254
        "172.16.0.0/12",  # RFC 1918
        "192.0.0.0/24",  # IETF protocol assignments; Oracle metadata 192.0.0.192
        "192.0.2.0/24",  # TEST-NET-1
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # RFC 1918
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and 255.255.255.255 broadcast
        "168.63.129.16/32",  # Azure wire server / metadata, on a public range
    )
)

#: IPv6 blocks inside global unicast 2000::/3 that are not public.
BLOCKED_V6: tuple[ipaddress.IPv6Network, ...] = tuple(
    _V6(n)
    for n in (
        "2001::/23",  # IETF protocol assignments (Teredo 2001::/32, ORCHID, benchmarking…)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
    )
)
GLOBAL_UNICAST = _V6("2000::/3")
NAT64 = _V6("64:ff9b::/96")
SIX_TO_FOUR = _V6("2002::/16")


@functools.cache
def default_trust() -> ssl.SSLContext:
    """httpx's default trust (``SSL_CERT_FILE``/``SSL_CERT_DIR``, else certifi's bundle), made
    once per process and shared by the push and webhook senders of every app in it: parsing the
    bundle costs 50-100 ms, and an ``SSLContext`` is safe to share between connections, threads
    and loops as long as nobody changes it. Invariant: no caller modifies the returned context
    (one with another CA, like ``TIDINGS_PUSH_CA_FILE``, is a context of its own)."""
    return httpx.create_ssl_context()


def embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a connection to ``address`` really reaches, if it carries one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in SIX_TO_FOUR:
        return address.sixtofour
    return None


def is_public(address: Address) -> bool:
    """True only for a globally reachable unicast address (see the module docstring)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        inner = embedded_v4(address)
        if inner is not None:
            return is_public(inner)
        if address not in GLOBAL_UNICAST or any(address in n for n in BLOCKED_V6):
            return False
    elif any(address in n for n in BLOCKED_V4):
        return False
    # Belt and braces: whatever this Python's ipaddress knows is not global stays refused.
    return address.is_global and not address.is_multicast


def parse_networks(spec: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, ::1/128"`` → networks. Raises ``ValueError`` for anything else."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()
    )


class AddressPolicy:
    """Public addresses, plus the networks the operator allowed explicitly."""

    def __init__(self, allowed: Iterable[Network] = ()) -> None:
        self.allowed = tuple(allowed)

    def _listed(self, address: Address) -> bool:
        return any(address.version == n.version and address in n for n in self.allowed)

    def permits(self, address: Address) -> bool:
        if is_public(address) or self._listed(address):
            return True
        inner = embedded_v4(address) if isinstance(address, ipaddress.IPv6Address) else None
        return inner is not None and self._listed(inner)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolve, keep the addresses ``policy`` permits, connect to one of them by IP."""

    def __init__(self, policy: AddressPolicy, inner: httpcore.AsyncNetworkBackend | None = None):
        self.policy = policy
        self.inner = inner or httpcore.AnyIOBackend()

    async def resolve(self, host: str, port: int, timeout: float | None) -> list[Address]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(
                    host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from error
        except OSError as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from error
        found: list[Address] = []
        for *_, sockaddr in infos:
            try:
                address = ipaddress.ip_address(str(sockaddr[0]))
            except ValueError:  # e.g. a scoped link-local "fe80::1%eth0": never permitted
                continue
            if address not in found:
                found.append(address)
        return found

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.resolve(host, port, timeout)
        permitted = [a for a in addresses if self.policy.permits(a)]
        if not permitted:  # the message is for the operator's log, never for the tenant
            listed = ", ".join(map(str, addresses)) or "no address"
            raise httpcore.ConnectError(
                f"refused by egress policy: {host} resolves to {listed}, none of them public "
                "or in TIDINGS_PUSH_ALLOW_NETWORKS"
            )
        return await self._connect_any(permitted, port, timeout, local_address, socket_options)

    async def _connect_any(
        self,
        addresses: Sequence[Address],
        port: int,
        timeout: float | None,
        local_address: str | None,
        socket_options: Iterable[Any] | None,
    ) -> httpcore.AsyncNetworkStream:
        error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as failed:
                error = failed
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("push endpoints are never unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
