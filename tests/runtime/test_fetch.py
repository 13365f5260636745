"""Fetching pages by URL without SSRF: every spelling of an internal address is refused,
redirects are checked again, the connection goes to the checked address, and the size, time
and kind of what comes back are bounded. Real HTTP against a page server on loopback."""

from __future__ import annotations

import gzip
import ipaddress
import re
import time
from collections.abc import Iterator

import pytest

from service.errors import FetchFailedError, FetchRefusedError
from service.runtime.fetch import Fetcher, literal_address, networks, refusal
from tests.pagesite import PAGE, Answer, Site, serve_site

pytestmark = pytest.mark.anyio

LOOPBACK = networks(["127.0.0.1/32"])


@pytest.fixture
def site() -> Iterator[Site]:
    with serve_site() as s:
        yield s


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),  # decimal
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("0x7f.0.0.1", "127.0.0.1"),  # hex
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),  # short forms
        ("127.0.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("0", "0.0.0.0"),
        ("[::1]", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("[::ffff:7f00:1]", "::ffff:7f00:1"),
        ("93.184.216.34", "93.184.216.34"),
    ],
)
def test_every_spelling_of_an_address_is_read_as_the_resolver_reads_it(
    spelling: str, address: str
) -> None:
    assert literal_address(spelling) == ipaddress.ip_address(address)


def test_names_are_not_addresses() -> None:
    for name in ("news.example", "localhost", "0x7f.example", "1.2.3.4.5", "256.1.1.1.1"):
        assert literal_address(name) is None, name


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.255.254",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # CGNAT
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "198.18.0.1",
        "192.0.2.1",  # documentation
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2001:db8::1",  # documentation
    ],
)
def test_internal_addresses_are_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is not None, address


def test_public_addresses_pass_and_allow_lets_an_operator_in() -> None:
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"):
        assert refusal(ipaddress.ip_address(address)) is None, address
    assert refusal(ipaddress.ip_address("10.1.2.3"), networks(["10.0.0.0/8"])) is None
    assert refusal(ipaddress.ip_address("10.1.2.3"), networks(["10.9.0.0/16"])) is not None
    with pytest.raises(ValueError, match="not an address"):
        networks(["intranet"])


async def test_a_page_is_fetched_with_its_charset(site: Site) -> None:
    site.answers["/a"] = Answer(
        headers={"Content-Type": "text/html; charset=GBK"}, body=PAGE.encode("gbk")
    )
    page = await Fetcher(allow=LOOPBACK).fetch(f"{site.url}/a")
    assert page.charset == "GBK" and page.body.decode("gbk") == PAGE
    assert page.url == f"{site.url}/a"


async def test_loopback_is_refused_without_the_operators_allow(site: Site) -> None:
    site.answers["/a"] = Answer()
    for url in (
        f"{site.url}/a",
        f"http://2130706433:{site.port}/a",
        f"http://0177.0.0.1:{site.port}/a",
        f"http://0x7f.1:{site.port}/a",
        f"http://127.1:{site.port}/a",
        f"http://[::ffff:127.0.0.1]:{site.port}/a",
        f"http://[::1]:{site.port}/a",
    ):
        with pytest.raises(FetchRefusedError, match="not fetched"):
            await Fetcher().fetch(url)
    assert site.seen == [], "nothing reached the server"


async def test_a_name_is_resolved_once_per_hop_and_the_checked_address_is_used(
    site: Site,
) -> None:
    # The name answers an allowed address twice, then an internal one: the connection goes
    # to the address checked (the site sees the name in Host), and a redirect to the same
    # name is resolved and checked again, and refused.
    calls: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"] if len(calls) <= 2 else ["10.0.0.1"]

    site.answers["/a"] = Answer()
    fetcher = Fetcher(allow=LOOPBACK, resolver=rebinding)
    page = await fetcher.fetch(f"http://news.test:{site.port}/a")
    assert b"\xe5\x85\xb0" in page.body  # 兰
    assert site.seen == [("/a", f"news.test:{site.port}")] and calls == ["news.test"]
    site.answers["/r"] = Answer(302, {"Location": f"http://news.test:{site.port}/a"}, b"")
    with pytest.raises(FetchRefusedError, match=re.escape("10.0.0.1")):
        await fetcher.fetch(f"http://news.test:{site.port}/r")
    assert calls == ["news.test"] * 3
    assert [p for p, _ in site.seen] == ["/a", "/r"], "nothing went to the internal address"


async def test_a_name_with_one_internal_address_among_public_ones_is_refused() -> None:
    async def mixed(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "192.168.0.10"]

    with pytest.raises(FetchRefusedError, match=re.escape("192.168.0.10")):
        await Fetcher(resolver=mixed).fetch("http://news.test/")


async def test_redirects_are_checked_and_bounded(site: Site) -> None:
    site.answers["/ok"] = Answer()
    site.answers["/to-ok"] = Answer(301, {"Location": "/ok"}, b"")
    site.answers["/inside"] = Answer(302, {"Location": "http://169.254.169.254/latest/"}, b"")
    site.answers["/inside6"] = Answer(307, {"Location": "http://[::ffff:10.0.0.1]/"}, b"")
    site.answers["/file"] = Answer(302, {"Location": "file:///etc/passwd"}, b"")
    site.answers["/loop"] = Answer(302, {"Location": "/loop"}, b"")
    fetcher = Fetcher(allow=LOOPBACK, max_redirects=3)
    assert (await fetcher.fetch(f"{site.url}/to-ok")).url == f"{site.url}/ok"
    with pytest.raises(FetchRefusedError, match=re.escape("169.254.169.254")):
        await fetcher.fetch(f"{site.url}/inside")
    with pytest.raises(FetchRefusedError, match=re.escape("10.0.0.1")):
        await fetcher.fetch(f"{site.url}/inside6")
    with pytest.raises(FetchRefusedError, match="only http"):
        await fetcher.fetch(f"{site.url}/file")
    with pytest.raises(FetchRefusedError, match="more than 3 redirects"):
        await fetcher.fetch(f"{site.url}/loop")
    assert [p for p, _ in site.seen].count("/loop") == 4


async def test_size_time_kind_and_status_are_bounded(site: Site) -> None:
    big = b"<p>" + "新闻".encode() * 200_000
    site.answers["/big"] = Answer(body=big)
    site.answers["/big-chunked"] = Answer(body=big, chunked=True)
    bomb = gzip.compress(b"<p>" + b"a" * 50_000_000)
    site.answers["/bomb"] = Answer(
        headers={"Content-Type": "text/html", "Content-Encoding": "gzip"}, body=bomb
    )
    small = gzip.compress(PAGE.encode())
    site.answers["/gz"] = Answer(
        headers={"Content-Type": "text/html", "Content-Encoding": "gzip"}, body=small
    )
    site.answers["/png"] = Answer(headers={"Content-Type": "image/png"}, body=b"\x89PNG....")
    site.answers["/slow"] = Answer(delay=3)
    site.answers["/gone"] = Answer(410, {"Content-Type": "text/html"}, b"gone")
    fetcher = Fetcher(allow=LOOPBACK, max_bytes=1_000_000, timeout_s=1)
    for path in ("/big", "/big-chunked", "/bomb"):
        with pytest.raises(FetchRefusedError, match="over 1000000 bytes"):
            await fetcher.fetch(site.url + path)
    assert (await fetcher.fetch(site.url + "/gz")).body == PAGE.encode()
    with pytest.raises(FetchRefusedError, match="not an HTML page"):
        await fetcher.fetch(site.url + "/png")
    with pytest.raises(FetchFailedError, match="answered 410"):
        await fetcher.fetch(site.url + "/gone")
    started = time.monotonic()
    with pytest.raises(FetchFailedError, match="within 1 s"):
        await fetcher.fetch(site.url + "/slow")
    assert time.monotonic() - started < 2
    with pytest.raises(FetchFailedError):
        await fetcher.fetch("http://127.0.0.1:1/")  # nothing listens
    await fetcher.aclose()


async def test_names_of_hex_letters_are_names() -> None:
    # cbc.ca, face.be: every letter a hex digit, and still names to resolve.
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["10.9.8.7"]

    for name in ("cbc.ca", "face.be", "deadbeef.cafe"):
        with pytest.raises(FetchRefusedError, match=re.escape("10.9.8.7")):
            await Fetcher(resolver=resolver).fetch(f"http://{name}/")
    assert asked == ["cbc.ca", "face.be", "deadbeef.cafe"]


async def test_urls_that_are_not_plain_web_addresses_are_refused() -> None:
    fetcher = Fetcher()
    for url in (
        "ftp://news.example/",
        "gopher://127.0.0.1:70/",
        "http://user:pw@news.example/",
        "http:///nohost",
        "http://news.example:99999/",
        "http://256.256.256.256/",
    ):
        with pytest.raises(FetchRefusedError):
            await fetcher.fetch(url)
