"""A local stand-in for Microsoft's read-aloud service, speaking its websocket protocol.

TLS on loopback with a certificate for speech.platform.bing.com from a CA made here. Per
connection: speech.config and ssml in; turn.start, audio.metadata (SentenceBoundary, or a
WordBoundary per word when the config asks for them, timed by espeak-ng's word events; 100 ns
ticks), binary audio frames (2-byte header length, headers, CRLF, MP3 at 24 kHz 48 kbit/s),
the empty closing audio frame and turn.end out. The audio is real speech (espeak-ng).
It misbehaves on demand: refuse with 403/429/503, drop the socket mid-audio, stall, or
return truncated audio; and it can add latency to every chunk.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
import tempfile
import threading
import uuid
import xml.etree.ElementTree as ET
from email.utils import formatdate
from pathlib import Path

from aiohttp import WSMsgType, web

from service.audio.mp3 import AudioFormat, encode_part
from service.engines.espeak_worker import Espeak

HOST = "speech.platform.bing.com"
PATH = "/consumer/speech/synthesize/readaloud/edge/v1"
SSML_NS = "{http://www.w3.org/2001/10/synthesis}"


def _make_certs(directory: Path) -> tuple[Path, Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "langdu test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(HOST), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_file, cert_file, key_file = (directory / f"{n}.pem" for n in ("ca", "cert", "key"))
    ca_file.write_bytes(ca.public_bytes(pem))
    cert_file.write_bytes(cert.public_bytes(pem))
    key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_file, cert_file, key_file


def _headers(path: str, request_id: str, content_type: str | None = None) -> str:
    lines = [f"X-RequestId:{request_id}"]
    if content_type:
        lines.append(f"Content-Type:{content_type}")
    lines.append(f"Path:{path}")
    return "\r\n".join(lines)


def _binary_head(head: bytes) -> bytes:
    # The service's 2-byte length counts the headers and the CRLF that ends them.
    return (len(head) + 2).to_bytes(2, "big") + head + b"\r\n"


class EdgeStandIn:
    """Run with `with EdgeStandIn() as s:`; then point the engine at `s.resolve`/`s.ca_file`."""

    def __init__(self, *, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.faults: list[str] = []  # consumed one per connection: 403 429 503 drop stall truncate
        # Faults for chunks whose text contains a key (drop, stall or truncate: the text is
        # known only once the connection is open): for failures at a given sentence.
        self.text_faults: dict[str, str] = {}
        self.texts: list[str] = []
        self.ssml: list[str] = []
        self.connections = 0
        self._dir = Path(tempfile.mkdtemp(prefix="edge-standin-"))
        self.ca_file, self._cert, self._key = _make_certs(self._dir)
        self._espeak: Espeak | None = None
        self._espeak_lock = threading.Lock()
        self._audio: dict[tuple[str, str], tuple[bytes, float, list[list[int]]]] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def resolve(self) -> str:
        """The LANGDU_EDGE_RESOLVE entry that sends the service's host here."""
        return f"{HOST}=127.0.0.1:{self.port}"

    def __enter__(self) -> EdgeStandIn:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get(PATH, self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self._cert, self._key)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def _speak(self, text: str, rate: str) -> tuple[bytes, float, list[list[int]]]:
        # The real service synthesizes remotely; cached here so the stand-in's own CPU use
        # (one espeak-ng) does not stand in for network time in benchmarks.
        key = (text, rate)
        if key not in self._audio:
            self._audio[key] = self._synthesize(text, rate)
        return self._audio[key]

    def _synthesize(self, text: str, rate: str) -> tuple[bytes, float, list[list[int]]]:
        from service.audio.mp3 import _pydub

        with self._espeak_lock:
            if self._espeak is None:
                self._espeak = Espeak.get()
            pct = float(rate.rstrip("%") or 0)
            pcm = self._espeak.synth(text, voice="cmn", wpm=round(175 * (1 + pct / 100)), pitch=50)
            words = self._espeak.words(text)
        seg = _pydub()(data=pcm, sample_width=2, frame_rate=22050, channels=1)
        seg = seg.set_frame_rate(24000)
        part = encode_part(seg.raw_data, AudioFormat(sample_rate=24000, bitrate_kbps=48))
        return part.data, len(seg) * 1.0, words

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.connections += 1
        fault = self.faults.pop(0) if self.faults else ""
        if fault in ("403", "429", "503"):
            return web.Response(status=int(fault), headers={"Date": formatdate(usegmt=True)})
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        config = await ws.receive()
        assert config.type == WSMsgType.TEXT and "Path:speech.config" in config.data
        ssml_msg = await ws.receive()
        assert ssml_msg.type == WSMsgType.TEXT and "Path:ssml" in ssml_msg.data
        ssml = ssml_msg.data.split("\r\n\r\n", 1)[1]
        self.ssml.append(ssml)
        root = ET.fromstring(ssml)  # a malformed document here is an injection: fail loudly
        prosody = root.find(f"{SSML_NS}voice/{SSML_NS}prosody")
        assert prosody is not None and len(prosody) == 0, "nothing but text inside prosody"
        text = prosody.text or ""
        self.texts.append(text)
        fault = fault or next((f for key, f in self.text_faults.items() if key in text), "")
        if fault == "stall":
            await asyncio.sleep(120)  # longer than any client waits
        await asyncio.sleep(self.latency_s)
        audio, duration_ms, words = await asyncio.to_thread(
            self._speak, text, prosody.get("rate", "+0%")
        )
        rid = uuid.uuid4().hex
        await ws.send_str(
            _headers("turn.start", rid, "application/json; charset=utf-8")
            + '\r\n\r\n{"context":{"serviceTag":"standin"}}'
        )
        if '"wordBoundaryEnabled":"true"' in config.data:  # one entry per word, as the service
            spans = [(o, n, a * 10_000, (b - a) * 10_000) for o, n, a, b in words]
            kind = "WordBoundary"
        else:
            spans = [(0, len(text), 500_000, int(duration_ms * 10_000))]
            kind = "SentenceBoundary"
        for at, length, offset, duration in spans:  # one boundary per message, as the service
            meta = json.dumps(
                {
                    "Metadata": [
                        {
                            "Type": kind,
                            "Data": {
                                "Offset": offset,
                                "Duration": duration,
                                "text": {
                                    "Text": text[at : at + length],
                                    "Length": length,
                                    "BoundaryType": kind,
                                },
                            },
                        }
                    ]
                },
                ensure_ascii=False,
            )
            await ws.send_str(
                _headers("audio.metadata", rid, "application/json") + "\r\n\r\n" + meta
            )
        frames = [audio[i : i + 4096] for i in range(0, len(audio), 4096)]
        if fault == "truncate":
            frames = frames[: max(1, len(frames) // 5)]
        for n, frame in enumerate(frames):
            if fault == "drop" and n == len(frames) // 2:
                assert request.transport is not None
                request.transport.close()  # the socket goes away mid-audio
                return ws
            head = _headers("audio", rid, "audio/mpeg").encode()
            await ws.send_bytes(_binary_head(head) + frame)
        head = _headers("audio", rid).encode()
        await ws.send_bytes(_binary_head(head))
        await ws.send_str(
            _headers("turn.end", rid, "application/json; charset=utf-8") + "\r\n\r\n{}"
        )
        await ws.receive()  # until the client closes
        return ws
