"""The outbound client: refused ranges (a resolver stub), pinning, redirects, caps, deadline."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from wg_api.platform import outbound
from wg_api.platform.outbound import OutboundClient, OutboundError, RefusedAddress

REFUSED_V4 = [
    "127.0.0.1",  # loopback
    "127.8.9.10",
    "10.1.2.3",  # private
    "172.16.0.1",
    "192.168.1.1",
    "169.254.10.1",  # link-local
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # CGNAT
    "100.100.100.200",  # cloud metadata (CGNAT)
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "0.0.0.0",  # noqa: S104 (unspecified)
    "0.1.2.3",
    "192.0.2.10",  # documentation
    "198.51.100.10",
    "203.0.113.10",
    "198.18.0.1",  # benchmarking
    "192.0.0.8",  # IETF protocol assignments
]
REFUSED_V6 = [
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "fd00:ec2::254",  # cloud metadata
    "fec0::1",  # site-local
    "ff02::1",  # multicast
    "2001:db8::1",  # documentation
    "100::1",  # discard
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:0808:0808::1",  # 6to4, even of a public address
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "64:ff9b:1::a00:1",  # local-use NAT64
]
REFUSED_EMBEDDED = [
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:100.64.0.1",
    "::127.0.0.1",  # IPv4-compatible
    "::10.0.0.1",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808"]


class Recorder:
    """A transport that answers 200 and records what it was asked to send, and where."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return httpx.Response(200, json={"ok": True})

        return httpx.MockTransport(handle)


def stub_resolver(*answers: list[str]) -> tuple[Any, list[str]]:
    """A resolver that gives `answers[i]` on its i-th call (the last one from then on)."""
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers[min(len(calls), len(answers)) - 1]

    return resolve, calls


@pytest.mark.parametrize("address", REFUSED_V4 + REFUSED_V6 + REFUSED_EMBEDDED)
async def test_every_refused_range_is_refused_before_connecting(address, monkeypatch):
    recorder = Recorder()
    resolve, calls = stub_resolver([address])
    monkeypatch.setattr(outbound, "resolve_host", resolve)
    client = OutboundClient(transport=recorder.transport())
    with pytest.raises(RefusedAddress) as refused:
        await client.get("https://idp.example/.well-known/openid-configuration")
    assert ipaddress.ip_address(refused.value.address) == ipaddress.ip_address(address)
    assert calls == ["idp.example"]
    assert recorder.requests == []
    # An address written into the URL itself is checked the same way.
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(RefusedAddress):
        await client.get(f"http://{literal}:8080/jwks.json")
    assert recorder.requests == []


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "64:ff9b::7f00:1"]
)
async def test_loopback_is_allowed_only_with_the_setting(address, monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(outbound, "resolve_host", stub_resolver([address])[0])
    with pytest.raises(RefusedAddress):
        await OutboundClient(transport=recorder.transport()).get("http://idp.example/")
    allowed = OutboundClient(allow_loopback=True, transport=recorder.transport())
    assert (await allowed.get("http://idp.example/")).status == 200


@pytest.mark.parametrize(
    "address", ["10.0.0.1", "192.168.0.1", "169.254.169.254", "::ffff:10.0.0.1", "fd00::1"]
)
async def test_allowing_loopback_never_allows_private_ranges(address, monkeypatch):
    monkeypatch.setattr(outbound, "resolve_host", stub_resolver([address])[0])
    client = OutboundClient(allow_loopback=True, transport=Recorder().transport())
    with pytest.raises(RefusedAddress):
        await client.get("https://idp.example/")


@pytest.mark.parametrize("address", PUBLIC)
async def test_public_addresses_are_called(address, monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(outbound, "resolve_host", stub_resolver([address])[0])
    answer = await OutboundClient(transport=recorder.transport()).get("https://idp.example/x")
    assert answer.status == 200
    assert answer.json() == {"ok": True}
    assert ipaddress.ip_address(recorder.requests[0].url.host) == ipaddress.ip_address(address)


async def test_one_refused_answer_among_public_ones_refuses_the_call(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(outbound, "resolve_host", stub_resolver(["8.8.8.8", "10.0.0.7"])[0])
    with pytest.raises(RefusedAddress):
        await OutboundClient(transport=recorder.transport()).get("https://idp.example/")
    assert recorder.requests == []


async def test_the_connection_goes_to_the_checked_address_and_never_resolves_again(monkeypatch):
    """DNS rebinding: a public answer first, 127.0.0.1 on any later lookup."""
    recorder = Recorder()
    resolve, calls = stub_resolver(["93.184.216.34"], ["127.0.0.1"])
    monkeypatch.setattr(outbound, "resolve_host", resolve)
    client = OutboundClient(transport=recorder.transport())
    answer = await client.get("https://idp.example:8443/keys?x=1")
    assert answer.status == 200
    assert calls == ["idp.example"]
    [sent] = recorder.requests
    assert sent.url.host == "93.184.216.34"
    assert sent.url.port == 8443
    assert sent.url.raw_path == b"/keys?x=1"
    assert sent.headers["host"] == "idp.example:8443"
    assert sent.extensions["sni_hostname"] == "idp.example"
    # The next call resolves afresh, gets the rebound answer, and is refused.
    with pytest.raises(RefusedAddress):
        await client.get("https://idp.example:8443/keys")
    assert len(recorder.requests) == 1


async def test_proxies_from_the_environment_are_ignored(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://10.0.0.1:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.0.0.1:3128")
    recorder = Recorder()
    monkeypatch.setattr(outbound, "resolve_host", stub_resolver(["8.8.8.8"])[0])
    await OutboundClient(transport=recorder.transport()).get("https://idp.example/")
    assert recorder.requests[0].url.host == "8.8.8.8"


async def test_only_http_urls_without_credentials_are_called():
    client = OutboundClient(allow_loopback=True, transport=Recorder().transport())
    for url in ("file:///etc/passwd", "ftp://127.0.0.1/", "http://user:pw@127.0.0.1/", "http://"):
        with pytest.raises(OutboundError):
            await client.get(url)


# ---- against a real server on 127.0.0.1 --------------------------------------------------------


class LocalServer:
    """A plain HTTP (or HTTPS) server on 127.0.0.1 whose answers the test chooses per path."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.hits: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.hits.append((self.path, self.headers.get("Host")))
                if self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/target")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.path == "/big-declared":
                    self.send_response(200)
                    self.send_header("Content-Length", str(4 * 1024 * 1024))
                    self.end_headers()
                    self.wfile.write(b"x" * 4096)
                elif self.path == "/big-chunked":
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    chunk = b"x" * 65536
                    try:
                        for _ in range(64):
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.write(b"0\r\n\r\n")
                    except OSError:
                        return
                elif self.path == "/slow":
                    self.send_response(200)
                    self.send_header("Content-Length", "10")
                    self.end_headers()
                    for _ in range(10):
                        time.sleep(0.3)
                        try:
                            self.wfile.write(b"x")
                            self.wfile.flush()
                        except OSError:
                            return
                else:
                    body = b'{"path": "' + self.path.encode() + b'"}'
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    server = LocalServer()
    yield server
    server.close()


async def test_redirects_are_answered_not_followed(local_server):
    client = OutboundClient(allow_loopback=True)
    answer = await client.get(f"http://127.0.0.1:{local_server.port}/redirect")
    assert answer.status == 302
    assert answer.headers["location"] == "/target"
    assert [path for path, _ in local_server.hits] == ["/redirect"]
    await client.aclose()


@pytest.mark.parametrize("path", ["/big-declared", "/big-chunked"])
async def test_the_body_is_capped(local_server, path):
    client = OutboundClient(allow_loopback=True)
    with pytest.raises(OutboundError, match="more than 100000 bytes"):
        await client.get(f"http://127.0.0.1:{local_server.port}{path}", max_bytes=100_000)
    small = await client.get(f"http://127.0.0.1:{local_server.port}/ok", max_bytes=100)
    assert small.json() == {"path": "/ok"}
    await client.aclose()


async def test_the_whole_call_has_one_deadline(local_server):
    """The server sends a byte every 0.3 s: no single read times out, the deadline does."""
    client = OutboundClient(allow_loopback=True)
    started = time.monotonic()
    with pytest.raises(OutboundError, match="did not answer within"):
        await client.get(f"http://127.0.0.1:{local_server.port}/slow", timeout=1.0)
    assert time.monotonic() - started < 2.0
    await client.aclose()


def _self_signed(host: str, directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_tls_to_the_pinned_address_checks_the_host_name(tmp_path, monkeypatch):
    """Connected to an IP, TLS still sends the host name (SNI) and verifies the certificate."""
    cert_file, key_file = _self_signed("idp.test", tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert_file, key_file)
    server = LocalServer(tls=server_tls)
    trust = ssl.create_default_context(cafile=str(cert_file))
    try:
        monkeypatch.setattr(outbound, "resolve_host", stub_resolver(["127.0.0.1"])[0])
        client = OutboundClient(allow_loopback=True, verify=trust)
        answer = await client.get(f"https://idp.test:{server.port}/jwks.json")
        assert answer.json() == {"path": "/jwks.json"}
        assert server.hits[-1] == ("/jwks.json", f"idp.test:{server.port}")
        # Another name on the same address fails the certificate check.
        with pytest.raises(OutboundError):
            await client.get(f"https://other.test:{server.port}/jwks.json")
        await client.aclose()
    finally:
        server.close()
