"""How a pull reaches a recorder (custody/recorder.py open_pull) against real local servers: only the
address the policy checked is connected to, whatever the name resolves to later; the name still goes in
the Host header and in TLS (SNI and the certificate check); redirects are not followed; a refused
address is never contacted; size and time caps end a pull with a plain reason."""

from __future__ import annotations

import datetime as dt
import http.server
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from custody import recorder
from custody.netpolicy import parse_networks

LOOPBACK = parse_networks("127.0.0.0/8")
NOW = dt.datetime.now(dt.UTC)


class Recorder:
    """A local HTTP(S) server; `answer` decides each response; `seen` records (Host header, path)."""

    def __init__(self, answer: Any, context: ssl.SSLContext | None = None) -> None:
        seen: list[tuple[str, str]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append((self.headers.get("Host", ""), self.path))
                answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.seen = seen
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if context is not None:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def send(body: bytes, status: int = 200, **headers: str) -> Any:
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        for k, v in {"Content-Length": str(len(body)), **headers}.items():
            h.send_header(k.replace("_", "-"), v)
        h.end_headers()
        h.wfile.write(body)

    return answer


@pytest.fixture
def video() -> Iterator[Recorder]:
    rec = Recorder(send(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 3000, Content_Type="video/mp4"))
    yield rec
    rec.close()


def pull(url: str, **kwargs: Any) -> bytes:
    options: dict[str, Any] = {"allowed": LOOPBACK, "timeout_s": 3, **kwargs}
    with recorder.open_pull(url, start=NOW, end=NOW, **options) as chunks:
        return b"".join(chunks)


def test_the_checked_address_is_the_one_connected_even_when_the_name_then_resolves_elsewhere(
    video: Recorder,
) -> None:
    answers = iter([["127.0.0.1"], ["127.0.0.2"], ["10.0.0.1"]])  # a rebinding resolver
    asked: list[str] = []

    def rebinding(host: str, port: int) -> Sequence[str]:
        asked.append(host)
        return next(answers)

    body = pull(f"http://cam.example.org:{video.port}/feed?channel=3", resolve=rebinding)
    assert len(body) > 3000 and asked == ["cam.example.org"]  # resolved once, by custody
    ((host, path),) = video.seen
    assert host == f"cam.example.org:{video.port}"  # virtual hosts keep working
    assert path.startswith("/feed?channel=3&start=")  # the window joins the address's own query


def test_a_refused_address_is_never_contacted_and_no_redirect_is_followed(video: Recorder) -> None:
    with pytest.raises(recorder.RecorderFailure) as refused:
        pull(f"http://127.0.0.1:{video.port}/feed", allowed=[])
    assert "not allowed" in refused.value.reason and not refused.value.retryable
    assert video.seen == []
    hop = Recorder(send(b"", 302, Location=f"http://127.0.0.1:{video.port}/feed"))
    try:
        with pytest.raises(recorder.RecorderFailure) as redirected:
            pull(f"http://127.0.0.1:{hop.port}/old")
        assert "HTTP 302" in redirected.value.reason and "follows none" in redirected.value.reason
        assert len(hop.seen) == 1 and video.seen == []
    finally:
        hop.close()


def test_size_and_time_caps_end_a_pull_with_a_plain_reason(video: Recorder) -> None:
    with pytest.raises(recorder.RecorderFailure) as declared:
        pull(f"http://127.0.0.1:{video.port}/feed", limit_bytes=1000)  # Content-Length says too much
    assert "larger than" in declared.value.reason

    def drip(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.end_headers()  # no Content-Length: the body runs until the connection closes
        for _ in range(200):  # 10 s in all, unless the pull stops first
            try:
                h.wfile.write(b"x" * 100)
                h.wfile.flush()
            except OSError:  # the pull hung up
                return
            time.sleep(0.05)

    slow = Recorder(drip)
    try:
        started = time.monotonic()
        with pytest.raises(recorder.RecorderFailure) as dripped:
            pull(f"http://127.0.0.1:{slow.port}/feed", max_duration_s=0.4, chunk_bytes=100)
        assert "too slowly" in dripped.value.reason and time.monotonic() - started < 5
        with pytest.raises(recorder.RecorderFailure) as undeclared:
            pull(f"http://127.0.0.1:{slow.port}/feed", limit_bytes=500, chunk_bytes=100)
        assert "larger than" in undeclared.value.reason
    finally:
        slow.close()


def _certificate(name: str, folder: Path) -> tuple[Path, Path, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return folder / "cert.pem", folder / "key.pem", pem


def test_https_presents_and_checks_the_name_while_connecting_to_the_checked_address(
    tmp_path: Path,
) -> None:
    cert, key, pem = _certificate("recorder.test", tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    names: list[str | None] = []

    def note_sni(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        names.append(name)

    server_tls.sni_callback = note_sni
    secure = Recorder(send(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100), server_tls)
    trust = ssl.create_default_context(cadata=pem.decode())
    try:
        to_loopback = {"recorder.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]}
        body = pull(
            f"https://recorder.test:{secure.port}/feed",
            resolve=lambda host, port: to_loopback[host],
            trust=trust,
        )
        assert body.startswith(b"\x00\x00\x00\x18ftyp") and names == ["recorder.test"]
        assert secure.seen[0][0] == f"recorder.test:{secure.port}"
        # The certificate is checked against the name, not the address: another name fails.
        with pytest.raises(recorder.RecorderFailure):
            pull(
                f"https://other.test:{secure.port}/feed",
                resolve=lambda host, port: to_loopback[host],
                trust=trust,
            )
        assert len(secure.seen) == 1
    finally:
        secure.close()
