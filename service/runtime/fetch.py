"""Fetching a page by its URL without becoming a way into the network behind langdu.

OWASP's server-side request forgery rules, as applied here:
- http and https only, a host and nothing odd in the URL;
- the host's every address (a name's, or an IP literal's in any spelling: decimal
  `2130706433`, octal `0177.0.0.1`, hex `0x7f.1`, short `127.1`, IPv6, IPv4-mapped IPv6)
  is checked, and one non-public address refuses the URL: loopback, private, link-local,
  CGNAT, multicast, reserved, unspecified, documentation and benchmarking ranges, and IPv4
  carried inside IPv6 (mapped, 6to4, Teredo, NAT64);
- the connection goes to the address that was checked (the name is resolved once per hop,
  and TLS still checks the certificate for the name): no DNS-rebinding window;
- each redirect is checked as a new URL, at most `max_redirects` of them;
- the whole fetch has a deadline and the body a size limit; environment proxies are ignored.

`allow` (LANGDU_FETCH_ALLOW) names addresses or networks an operator trusts (an internal
news site); nothing else non-public is ever fetched.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit

import httpx

from service import __version__
from service.errors import FetchFailedError, FetchRefusedError

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

HTML_TYPES = ("text/html", "application/xhtml+xml")
FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/xml",
    "text/xml",
    "text/plain",  # some servers label their feeds so
)
_REDIRECTS = {301, 302, 303, 307, 308}
_NUMERIC_PART = re.compile(r"0x[0-9a-f]*|[0-9]+", re.IGNORECASE)
# Not public, beyond what ipaddress's is_global already says.
_EXTRA_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "100.64.0.0/10",  # CGNAT
        "192.0.0.0/24",
        "198.18.0.0/15",  # benchmarking
        "224.0.0.0/4",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "64:ff9b:1::/48",
        "fc00::/7",
        "fec0::/10",
        "ff00::/8",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def networks(values: Sequence[str]) -> tuple[Network, ...]:
    """LANGDU_FETCH_ALLOW's addresses and networks, blanks skipped; ValueError names a bad
    one."""
    out = []
    for value in filter(str.strip, values):
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an address or network") from None
    return tuple(out)


def literal_address(host: str) -> IP | None:
    """The address an IP literal names, in any spelling a resolver accepts (the classic
    inet_aton forms: decimal, octal, hex, 1-4 parts); None for a name."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    parts = host.rstrip(".").split(".")
    if not 1 <= len(parts) <= 4 or not all(_NUMERIC_PART.fullmatch(p) for p in parts):
        return None
    values = []
    for part in parts:
        octal = len(part) > 1 and part[0] == "0"
        base = 16 if part.lower().startswith("0x") else 8 if octal else 10
        digits = part[2:] if base == 16 else part
        try:
            values.append(int(digits or "0", base))
        except ValueError:
            return None
    # The last part fills all the bytes the others leave (127.1 = 127.0.0.1).
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = 0
    for v in head:
        number = number << 8 | v
    number = number << 8 * (4 - len(head)) | last
    return ipaddress.IPv4Address(number)


def refusal(ip: IP, allow: Sequence[Network] = ()) -> str | None:
    """Why `ip` may not be fetched from (None: it may)."""
    if any(ip.version == net.version and ip in net for net in allow):
        return None
    inside: list[IP] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            inside.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            inside.append(ip.sixtofour)
        if ip.teredo is not None:
            inside.extend(ip.teredo)
        if ip in _NAT64:
            inside.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    for address in inside:
        if any(address in net for net in allow if address.version == net.version):
            continue
        if (
            not address.is_global
            or address.is_loopback
            or address.is_private
            or address.is_link_local
            or address.is_multicast
            or address.is_reserved
            or address.is_unspecified
            or any(address.version == n.version and address in n for n in _EXTRA_BLOCKED)
        ):
            kind = (
                "loopback"
                if address.is_loopback
                else "link-local"
                if address.is_link_local
                else "private"
                if address.is_private
                else "not public"
            )
            return f"{address} is a {kind} address"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system's resolver gives for `host`."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchFailedError(f"{host}: the name does not resolve ({exc.strerror})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class Page:
    """What a URL answered with, after its redirects."""

    url: str  # the last URL, where the page was found
    body: bytes
    media_type: str
    charset: str | None
    status: int = 200  # 304: not modified since the validators given (no body)
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class Fetcher:
    """Fetches pages under the rules above. One per process; `aclose` when done."""

    allow: tuple[Network, ...] = ()
    timeout_s: float = 15.0
    max_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5
    resolver: Resolver = system_resolver
    _client: httpx.AsyncClient | None = field(default=None, repr=False)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                follow_redirects=False,
                trust_env=False,  # an environment proxy would connect by name, unchecked
                timeout=httpx.Timeout(self.timeout_s),
                headers={
                    "User-Agent": f"langdu/{__version__} (read-aloud; +https://github.com/)",
                    "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
                    "Accept-Encoding": "gzip, deflate",
                },
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def fetch(
        self,
        url: str,
        *,
        kinds: Sequence[str] = HTML_TYPES,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> Page:
        """The page at `url`, of one of the media types `kinds` (HTML by default; a body
        without a type that starts with `<` passes too). With `etag` / `last_modified` the
        request is conditional: an unchanged resource is a Page with status 304.

        Raises:
            FetchRefusedError: the URL, an address it resolves to, a redirect, the size or
                the kind of what it answers is refused.
            FetchFailedError: the site did not answer in time, refused, or answered an
                error status.
        """
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._follow(url, kinds, _conditions(etag, last_modified))
        except TimeoutError:
            raise FetchFailedError(f"{url}: no whole answer within {self.timeout_s:g} s") from None

    async def _follow(self, url: str, kinds: Sequence[str], conditions: dict[str, str]) -> Page:
        for _ in range(self.max_redirects + 1):
            target, address = await self._checked(url)
            answer = await self._get(target, address, kinds, conditions)
            if isinstance(answer, Page):
                return answer
            url = answer  # a redirect: checked again from the start
        raise FetchRefusedError(f"more than {self.max_redirects} redirects")

    def precheck(self, url: str) -> None:
        """What can be refused without asking a resolver: the scheme, credentials, the
        port, and a host that is an address (in any spelling) langdu does not fetch from.

        Raises:
            FetchRefusedError: the URL will never be fetched.
        """
        self._parsed(url)

    def _parsed(self, url: str) -> tuple[SplitResult, int, IP | None]:
        """The URL's parts, its port, and the address its host names if it is a literal."""
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise FetchRefusedError(f"{url!r}: only http:// and https:// URLs are fetched")
        if parts.username or parts.password:
            raise FetchRefusedError(f"{url!r}: URLs with credentials are not fetched")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise FetchRefusedError(f"{url!r}: the port is not a number") from None
        host = parts.hostname
        literal = literal_address(host)
        # As URL parsers decide (WHATWG): a host whose last label is a number is an IPv4
        # address, and one that is not valid is no host at all (never a name to resolve).
        last = host.rstrip(".").rsplit(".", 1)[-1]
        if literal is None and _NUMERIC_PART.fullmatch(last):
            raise FetchRefusedError(f"{host!r} is not a valid address")
        if literal is not None and (reason := refusal(literal, self.allow)):
            raise FetchRefusedError(f"{host} is not fetched: {reason}")
        return parts, port, literal

    async def _checked(self, url: str) -> tuple[httpx.URL, str]:
        """The URL and the one address it may be fetched from."""
        parts, port, literal = self._parsed(url)
        host = str(parts.hostname)
        if literal is not None:
            addresses: list[IP] = [literal]
        else:
            found = await self.resolver(host.encode("idna").decode("ascii"), port)
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
            if not addresses:
                raise FetchFailedError(f"{host}: the name has no address")
        for address in addresses:
            reason = refusal(address, self.allow)
            if reason:
                raise FetchRefusedError(f"{host} is not fetched: {reason}")
        netloc = host if ":" not in host else f"[{host}]"
        if parts.port:
            netloc += f":{parts.port}"
        clean = urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))
        return httpx.URL(clean), str(addresses[0])

    async def _get(
        self, url: httpx.URL, address: str, kinds: Sequence[str], conditions: dict[str, str]
    ) -> Page | str:
        """One request to `address` for `url`: the page, or where it redirects to."""
        pinned = url.copy_with(host=address)
        headers = {"Host": url.netloc.decode("ascii"), **conditions}
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        request = self._http().build_request("GET", pinned, headers=headers, extensions=extensions)
        try:
            response = await self._http().send(request, stream=True)
        except httpx.HTTPError as exc:
            raise FetchFailedError(f"{url}: {type(exc).__name__}: {exc}") from None
        try:
            if response.status_code in _REDIRECTS:
                location = response.headers.get("location")
                if not location:
                    raise FetchFailedError(f"{url}: a redirect without a Location")
                return str(urljoin(str(url), str(location)))
            validators = {
                "etag": response.headers.get("etag"),
                "last_modified": response.headers.get("last-modified"),
            }
            if response.status_code == 304 and conditions:
                return Page(str(url), b"", "", None, status=304, **validators)
            if response.status_code != 200:
                raise FetchFailedError(f"{url}: the site answered {response.status_code}")
            media_type, charset = _content_type(response.headers.get("content-type", ""))
            declared = int(response.headers.get("content-length") or 0)
            if declared > self.max_bytes:
                raise FetchRefusedError(f"{url}: the page is over {self.max_bytes} bytes")
            inflater = _Inflater(response.headers.get("content-encoding", ""), self.max_bytes)
            body = bytearray()
            async for chunk in response.aiter_raw():
                body += inflater.feed(chunk)
            if media_type not in kinds and not (
                not media_type and bytes(body[:512]).lstrip().startswith(b"<")
            ):
                what = "an HTML page" if kinds == HTML_TYPES else "a feed"
                raise FetchRefusedError(f"{url}: not {what} ({media_type or 'no type'})")
            return Page(str(url), bytes(body), media_type or kinds[0], charset, **validators)
        except httpx.HTTPError as exc:
            raise FetchFailedError(f"{url}: {type(exc).__name__}: {exc}") from None
        finally:
            await response.aclose()


def _conditions(etag: str | None, last_modified: str | None) -> dict[str, str]:
    """A conditional GET's headers, from what the last answer said."""
    out = {}
    if etag:
        out["If-None-Match"] = etag
    if last_modified:
        out["If-Modified-Since"] = last_modified
    return out


def _content_type(value: str) -> tuple[str, str | None]:
    media_type, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, v = param.partition("=")
        if name.strip().lower() == "charset" and v.strip():
            charset = v.strip().strip("\"'")
    return media_type.strip().lower(), charset


class _Inflater:
    """A body's gzip or deflate coding undone as it arrives, never past `limit` bytes (read
    raw, so a small compressed bomb cannot grow unseen)."""

    def __init__(self, coding: str, limit: int) -> None:
        coding = coding.strip().lower()
        self.limit = limit
        self.size = 0
        if coding in ("", "identity"):
            self.inflate: zlib._Decompress | None = None
        elif coding in ("gzip", "x-gzip"):
            self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            self.inflate = zlib.decompressobj()
        else:
            raise FetchRefusedError(f"the page is sent in a coding not asked for ({coding})")

    def feed(self, data: bytes) -> bytes:
        if self.inflate is None:
            out = data
        else:
            try:
                out = self.inflate.decompress(data, self.limit - self.size + 1)
            except zlib.error:
                raise FetchFailedError("the page's compressed bytes are damaged") from None
        self.size += len(out)
        if self.size > self.limit:
            raise FetchRefusedError(f"the page is over {self.limit} bytes")
        return out
