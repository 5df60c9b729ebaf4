"""Which recorder addresses custody pulls from (custody/netpolicy.py): public http(s) only, unless an
administrator allowed the network; every resolved address checked; odd numeric forms refused."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest

from custody.netpolicy import PullRefused, check_url, parse_networks, refusal
from custody.settings import Settings

NONE: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []


def fake_dns(table: dict[str, Sequence[str]]):  # type: ignore[no-untyped-def]
    """A resolver answering from a table (names not in it do not resolve)."""

    def resolve(host: str, port: int) -> Sequence[str]:
        return table.get(host, [])

    return resolve


NO_DNS = fake_dns({})

REFUSED_LITERALS = [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.255.0.9:8080/feed", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://[::1]:9000/x", "loopback"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://100.64.0.1/", "shared (carrier-grade NAT)"),
    ("http://100.127.255.254/", "shared (carrier-grade NAT)"),
    ("http://[fd00::1]/", "unique local"),
    ("http://[fc00::5]/", "unique local"),
    ("http://[fec0::1]/", "site-local"),
    ("http://224.0.0.1/", "multicast"),
    ("http://239.1.2.3/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "reserved"),
    ("http://192.0.2.10/", "private"),  # documentation range
    ("http://198.18.0.1/", "private"),  # benchmarking range
    # IPv6 forms of IPv4 addresses are what they stand for
    ("http://[::ffff:10.0.0.1]/", "private"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://[::ffff:7f00:1]/", "loopback"),
    ("http://[64:ff9b::a00:1]/", "private"),  # NAT64 of 10.0.0.1
    ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 of 127.0.0.1
    ("http://[::127.0.0.1]/", "reserved"),  # deprecated IPv4-compatible form
    ("http://[64:ff9b:1::1]/", "local NAT64"),
]


@pytest.mark.parametrize(("url", "category"), REFUSED_LITERALS)
def test_internal_address_literals_are_refused_naming_the_network_and_the_setting(
    url: str, category: str
) -> None:
    with pytest.raises(PullRefused) as refused:
        check_url(url, NONE, resolve=NO_DNS)
    assert f"in a {category} network" in refused.value.reason
    assert "CUSTODY_PULL_ALLOWED_NETWORKS" in refused.value.reason
    assert not refused.value.retryable


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",  # decimal 127.0.0.1
        "http://0x7f.1/",  # hex and short form
        "http://0x7f000001/",
        "http://017700000001/",  # octal
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://10.1/",
        "http://3232235777/",  # 192.168.1.1
    ],
)
def test_numbers_that_resolvers_read_as_addresses_are_refused_before_any_lookup(url: str) -> None:
    looked_up: list[str] = []

    def resolve(host: str, port: int) -> Sequence[str]:
        looked_up.append(host)
        return ["127.0.0.1"]

    with pytest.raises(PullRefused) as refused:
        check_url(url, NONE, resolve=resolve)
    reason = refused.value.reason  # httpx itself refuses a few of them as invalid
    assert ("four decimal numbers" in reason or "not a valid URL" in reason) and not looked_up


@pytest.mark.parametrize(
    "url",
    ["ftp://203.0.113.7/x", "file:///etc/passwd", "gopher://example.org/", "javascript:alert(1)", "//x/"],
)
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(PullRefused) as refused:
        check_url(url, NONE, resolve=NO_DNS)
    assert "http://" in refused.value.reason or "not a valid URL" in refused.value.reason


def test_every_resolved_address_must_pass_and_the_first_is_the_one_connected_to() -> None:
    dns = fake_dns(
        {
            "cam.example.org": ["8.8.8.8", "2001:4860:4860::8888"],
            "mixed.example.org": ["8.8.8.8", "10.0.0.1"],
            "rebind.example.org": ["::ffff:169.254.169.254"],
            "scoped.example.org": ["fe80::1%eth0"],
        }
    )
    target = check_url("https://Cam.Example.org./feed?x=1", NONE, resolve=dns)
    assert str(target.address) == "8.8.8.8"
    assert str(target.pinned_url) == "https://8.8.8.8/feed?x=1"
    assert target.host_header == "cam.example.org" and target.sni_hostname == "cam.example.org"
    for host, category in [
        ("mixed.example.org", "private"),
        ("rebind.example.org", "link-local"),
        ("scoped.example.org", "link-local"),
    ]:
        with pytest.raises(PullRefused) as refused:
            check_url(f"http://{host}:8080/", NONE, resolve=dns)
        # The name was typed; the internal address it resolves to is not told.
        assert f"{host} resolves to a {category} address" in refused.value.reason
        assert "10.0.0.1" not in refused.value.reason and "169.254" not in refused.value.reason


def test_a_name_that_does_not_resolve_is_refused_but_may_be_tried_again() -> None:
    with pytest.raises(PullRefused) as refused:
        check_url("http://nowhere.invalid/feed", NONE, resolve=NO_DNS)
    assert "does not resolve" in refused.value.reason and refused.value.retryable

    def broken(host: str, port: int) -> Sequence[str]:
        raise OSError("Name or service not known")

    with pytest.raises(PullRefused):
        check_url("http://nowhere.invalid/feed", NONE, resolve=broken)


def test_allowed_networks_open_exactly_what_they_list() -> None:
    allowed = parse_networks("127.0.0.0/8, 10.20.0.0/16,fd00:1::/64")
    dns = fake_dns({"nvr.lan": ["10.20.3.4"], "other.lan": ["10.21.0.1"]})
    assert str(check_url("http://127.0.0.1:9/feed", allowed, resolve=NO_DNS).address) == "127.0.0.1"
    assert str(check_url("http://[::ffff:127.0.0.1]/", allowed, resolve=NO_DNS).address) == "::ffff:7f00:1"
    assert str(check_url("http://nvr.lan/", allowed, resolve=dns).address) == "10.20.3.4"
    assert str(check_url("http://[fd00:1::9]/", allowed, resolve=NO_DNS).address) == "fd00:1::9"
    for url in ["http://other.lan/", "http://[::1]/", "http://169.254.169.254/", "http://[fd00:2::1]/"]:
        with pytest.raises(PullRefused):
            check_url(url, allowed, resolve=dns)


def test_public_addresses_pass_and_keep_their_port_in_the_host_header() -> None:
    target = check_url("http://[2001:4860:4860::8888]:8080/a", NONE, resolve=NO_DNS)
    assert target.host_header == "[2001:4860:4860::8888]:8080" and target.sni_hostname is None
    assert str(target.pinned_url) == "http://[2001:4860:4860::8888]:8080/a"
    assert refusal(ipaddress.ip_address("203.0.114.1"), NONE) is None
    assert refusal(ipaddress.ip_address("::ffff:8.8.8.8"), NONE) is None  # stands for a public address
    assert refusal(ipaddress.ip_address("2002:808:808::1"), NONE) is None


def test_the_setting_defaults_to_none_except_loopback_in_dev_mode(tmp_path: object) -> None:
    assert Settings(mode="test").pull_networks == []
    assert Settings(mode="production").pull_networks == []
    assert [str(n) for n in Settings(mode="dev").pull_networks] == ["127.0.0.0/8"]
    assert Settings(mode="dev", pull_allowed_networks="").pull_networks == []
    given = Settings(mode="production", pull_allowed_networks="10.1.2.3/16,fd00::/8")
    assert [str(n) for n in given.pull_networks] == ["10.1.0.0/16", "fd00::/8"]
    with pytest.raises(ValueError, match="CUSTODY_PULL_ALLOWED_NETWORKS"):
        Settings(pull_allowed_networks="10.0.0.0/8,intranet")
