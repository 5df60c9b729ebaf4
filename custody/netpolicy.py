"""Which recorder addresses custody may pull footage from.

Why: an integrated camera's pull URL is typed by staff or by a resident, and custody's worker fetches
it from inside the program's network. Left open, anybody who may register a camera could make the
worker reach the database, the object store, a cloud metadata service or any internal port, and read
the answer (or its absence) in the request's history. So a pull URL must be http(s) and every address
its host resolves to must be public, unless it lies in a network an administrator listed in
`CUSTODY_PULL_ALLOWED_NETWORKS`.

The decision is made twice: when a camera is registered or edited (so people hear at once), and at
every pull, because a host name may resolve elsewhere by then. At pull time the caller connects only
to an address this module checked (`Target.pinned_url`), never to the name again, so a second DNS
answer cannot slip past the check.

Pure apart from name resolution, which is a parameter (tests pass their own resolver).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: host name (ASCII) and port -> the addresses it resolves to (empty or OSError: it does not resolve)
Resolver = Callable[[str, int], Sequence[str]]

SETTING = "CUSTODY_PULL_ALLOWED_NETWORKS"
ALLOW_HINT = f"an administrator can allow such networks with {SETTING} (comma-separated CIDRs)"

_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598); not "private" in Python
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known NAT64: the last 32 bits are an IPv4 address
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # local-use NAT64 (RFC 8215)
_ULA = ipaddress.IPv6Network("fc00::/7")


class PullRefused(Exception):
    """A pull URL custody will not fetch. `reason` is for people (lower case, no final stop);
    `retryable` says whether trying again later may help (a name that does not resolve yet)."""

    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


def parse_networks(value: str | Iterable[object]) -> list[Network]:
    """Comma-separated CIDRs (or a list of them) as networks; ValueError naming the setting otherwise.
    Host bits are allowed ("10.1.2.3/8" means 10.0.0.0/8): what was meant is plain."""
    items = value.split(",") if isinstance(value, str) else list(value)
    networks: list[Network] = []
    for item in items:
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            networks.append(item)
            continue
        text = str(item).strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError as exc:
            raise ValueError(
                f"{SETTING} must be comma-separated networks such as 10.20.0.0/16,fd00:1::/64; "
                f"{text!r} is not one"
            ) from exc
    return networks


def _embedded_ipv4(ip: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, when it is one of the forms that reach IPv4
    (mapped ::ffff:a.b.c.d, 6to4 2002::/16, NAT64 64:ff9b::/96)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _category(ip: Address) -> str | None:
    """Why an address is not public (a word people know), or None when it is."""
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "shared (carrier-grade NAT)"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _ULA:
            return "unique local"
        if ip.is_site_local:
            return "site-local"
        if ip in _NAT64_LOCAL:
            return "local NAT64"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "special-purpose"
    return None


def refusal(ip: Address, allowed: Sequence[Network]) -> str | None:
    """Why custody may not connect to `ip` (the kind of network it is in), or None when it may: the
    address is public, or it (or the IPv4 address it stands for) is inside an allowed network."""
    inner = _embedded_ipv4(ip)
    if any(a in net for a in (ip, inner) if a is not None for net in allowed if a.version == net.version):
        return None
    return _category(ip if inner is None else inner)  # a mapped address is what it stands for


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (IPv4 and IPv6), in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class Target:
    """A pull URL that passed the policy, with the checked address to connect to."""

    url: httpx.URL
    host: str  # ASCII (IDNA) host name or address literal, as in the URL
    port: int
    address: Address  # the checked address the connection must go to
    host_is_literal: bool

    @property
    def pinned_url(self) -> httpx.URL:
        """The URL with its host replaced by the checked address: httpx connects there and nowhere else."""
        return self.url.copy_with(host=str(self.address))

    @property
    def host_header(self) -> str:
        default = 443 if self.url.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.url.port in (None, default) else f"{host}:{self.port}"

    @property
    def sni_hostname(self) -> str | None:
        """The name TLS must present and verify the certificate against (None for an address literal)."""
        return None if self.host_is_literal or self.url.scheme != "https" else self.host


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _legacy_numeric(host: str) -> bool:
    """Whether `host` is an IPv4 address in a form other than a.b.c.d ("2130706433", "0x7f.1",
    "0177.0.0.1", "127.1"): resolvers read those as addresses, people rarely see what they mean."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return _literal(host) is None


def check_url(url: str, allowed: Sequence[Network], *, resolve: Resolver = system_resolver) -> Target:
    """The pull URL as a Target, or PullRefused saying why custody will not fetch it.

    Every address the host resolves to must pass (a name answering with one public and one internal
    address is refused: which one a client picks is not ours to decide), and the Target holds the
    first of them, the one to connect to.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise PullRefused(f"the recorder address is not a valid URL ({exc})") from exc
    if parsed.scheme not in ("http", "https"):
        raise PullRefused("the recorder address (pull_url) must start with http:// or https://")
    host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    if not host:
        raise PullRefused("the recorder address has no host name")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    literal = _literal(host)
    if literal is None and _legacy_numeric(host):
        raise PullRefused(
            f"the recorder address {host!r} is a number written in a form custody does not guess at; "
            "write an IPv4 address as four decimal numbers (such as 203.0.113.7) or use its host name"
        )
    if literal is not None:
        addresses: list[Address] = [literal]
    else:
        try:
            found = list(resolve(host, port))
        except (OSError, UnicodeError):
            found = []
        if not found:
            raise PullRefused(f"the recorder's host name {host} does not resolve", retryable=True)
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
    for address in addresses:
        why = refusal(address, allowed)
        if why is not None:
            if literal is not None:
                what = f"{address} is in a {why} network"
            else:  # the name was typed: which address it resolves to stays inside
                what = f"{host} resolves to a {why} address"
            raise PullRefused(f"the recorder address is not allowed: {what}; {ALLOW_HINT}")
    return Target(parsed, host, port, addresses[0], literal is not None)
