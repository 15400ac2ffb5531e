"""Which network addresses a download may reach, checked where the connection is made.

Rule: a download connects only to globally routable unicast addresses. Loopback, private (RFC 1918, IPv6 ULA),
link-local (cloud metadata services live there), carrier-grade NAT, multicast, reserved, unspecified and
documentation ranges are refused (an IPv4 address mapped or NAT64-embedded in IPv6 is judged as the IPv4
address), unless the caller allows private networks (tests, an intranet mirror).

The check is made on the *resolved* address, and the socket connects to that very address (one lookup, no
second one a rebinding DNS server could answer differently); TLS still verifies the certificate against the
host name. Every hop of a redirect chain opens a new connection, so every hop is checked. Through an HTTP
proxy (only when ``DownloadPolicy.use_env_proxies`` is set), the proxy itself is not checked (the operator
chose it) and the target host is resolved and checked here, but the proxy makes its own lookup: that lookup
is not under this check, which is why proxies from the environment are off by default.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import socket
import urllib.parse
import urllib.request

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class PrivateAddressError(OSError):
    """A connection refused because the host resolves to an address a download may not reach."""


def address_refusal(address: str) -> str | None:
    """Why ``address`` (an IP literal) may not be reached, or None when it is a global unicast address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return f"{address!r} is not an IP address"
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    for flag, name in (("is_unspecified", "unspecified"), ("is_loopback", "loopback"),
                       ("is_link_local", "link-local"), ("is_multicast", "multicast"),
                       ("is_private", "private"), ("is_reserved", "reserved")):
        if getattr(ip, flag):
            return f"{name} address {ip}"
    if not ip.is_global:
        return f"non-global address {ip}"
    return None


def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[tuple]:
    """The ``getaddrinfo`` results for ``host:port`` (TCP). Raises PrivateAddressError when any resolved
    address is refused: a name that resolves to a mix of public and private addresses is refused as a whole."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not allow_private:
        for *_, sockaddr in infos:
            problem = address_refusal(sockaddr[0])
            if problem:
                raise PrivateAddressError(
                    f"{host} resolves to a {problem}: loopback, private, link-local, multicast and reserved "
                    "addresses are refused (allow them with allow_private_addresses for an intranet mirror)")
    return infos


def _connect_to(infos: list[tuple], timeout, source_address) -> socket.socket:
    """Connect to the first of the resolved (and checked) addresses that answers, as socket.create_connection
    does, but without resolving the name again."""
    last_error: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # noqa: SLF001 - the stdlib's own sentinel
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            last_error = exc
            sock.close()
    raise last_error if last_error is not None else OSError("getaddrinfo returned no address")


class _CheckedConnectionMixin:
    """Replaces http.client's ``socket.create_connection`` (its ``_create_connection`` hook) with a lookup,
    a check, and a connection to the checked address."""

    def _setup_check(self, target: tuple[str, int], allow_private: bool) -> None:
        self._target_host, self._target_port = target[0].lower(), target[1]
        self._allow_private = allow_private
        self._create_connection = self._checked_create_connection

    def _checked_create_connection(self, address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT,  # noqa: SLF001
                                   source_address=None):
        host, port = address
        if host.lower().strip("[]") != self._target_host:
            # Connecting to a proxy: the target is checked (see the module docstring), the proxy is not.
            if not self._allow_private:
                resolve_checked(self._target_host, self._target_port, allow_private=False)
            return socket.create_connection(address, timeout, source_address)
        return _connect_to(resolve_checked(host, port, allow_private=self._allow_private), timeout, source_address)


class CheckedHTTPConnection(_CheckedConnectionMixin, http.client.HTTPConnection):
    def __init__(self, *args, target: tuple[str, int], allow_private: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._setup_check(target, allow_private)


class CheckedHTTPSConnection(_CheckedConnectionMixin, http.client.HTTPSConnection):
    def __init__(self, *args, target: tuple[str, int], allow_private: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._setup_check(target, allow_private)


def _target(request: urllib.request.Request) -> tuple[str, int]:
    """(host, port) the request's URL names (not a proxy's)."""
    parts = urllib.parse.urlsplit(request.full_url)
    return (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


class CheckedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, allow_private: bool) -> None:
        super().__init__()
        self.allow_private = allow_private

    def http_open(self, req):
        connection = functools.partial(CheckedHTTPConnection, target=_target(req),
                                       allow_private=self.allow_private)
        return self.do_open(connection, req)


class CheckedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, allow_private: bool) -> None:
        super().__init__()
        self.allow_private = allow_private

    def https_open(self, req):
        connection = functools.partial(CheckedHTTPSConnection, target=_target(req),
                                       allow_private=self.allow_private)
        return self.do_open(connection, req, context=self._context)
