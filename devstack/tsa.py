"""A small, real RFC 3161 time-stamping authority over HTTP(S), for tests and the rehearsal.

It takes `application/timestamp-query` POSTs and answers `application/timestamp-reply`, signing each
token with a certificate whose only extended key usage is timeStamping (`TestCA(...).timestamping()`),
so custody's PAdES B-T signatures are made exactly as against a commercial or national TSA. pyHanko's
DummyTimeStamper builds the token; it signs with RSA only, so the signing step is redone here for the
test CA's ECDSA keys. Nothing here is used in production: a department points `CUSTODY_TSA_URL` at
its own or a qualified TSA.

Run as `python -m devstack.tsa --port 3161 --cert tsa.pem --key tsa-key.pem [--chain ca.pem]
[--tls-cert server.pem --tls-key server-key.pem] [--auth-user u --auth-password-file f]`.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import signal
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from asn1crypto import algos, cms, keys, pem, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.sign import general
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore


def _certs(pem_text: bytes) -> list[asn1_x509.Certificate]:
    return [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(pem_text, multiple=True)]


class EcdsaTimeStamper(DummyTimeStamper):
    """DummyTimeStamper with ECDSA (and RSA) keys: the token's SignerInfo signed as RFC 5652 says."""

    def _sign_tst_info(
        self, tst_info_data: bytes, md_algorithm: str, dt: datetime
    ) -> tuple[bytes, cms.CMSAttributes]:
        key = serialization.load_der_private_key(self.tsa_key.dump(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            result: tuple[bytes, cms.CMSAttributes] = super()._sign_tst_info(tst_info_data, md_algorithm, dt)
            return result
        # The same signed attributes the parent builds (content type, signing time, signing
        # certificate, message digest), signed with ECDSA instead of RSA PKCS#1 v1.5.
        signed_attrs = self._attrs(tst_info_data, md_algorithm, dt)
        digest = getattr(hashes, md_algorithm.upper())()
        return key.sign(signed_attrs.dump(), ec.ECDSA(digest)), signed_attrs

    def _attrs(self, tst_info_data: bytes, md_algorithm: str, dt: datetime) -> cms.CMSAttributes:
        md = hashes.Hash(getattr(hashes, md_algorithm.upper())())
        md.update(tst_info_data)
        signing_cert = general.as_signing_certificate(self.tsa_cert)
        values: list[tuple[str, object]] = [
            ("content_type", "tst_info"),
            ("signing_time", cms.Time({"utc_time": dt})),
            ("signing_certificate", signing_cert),
            ("message_digest", md.finalize()),
        ]
        return cms.CMSAttributes(
            [general.simple_cms_attribute(name, value) for name, value in values]  # type: ignore[no-untyped-call]
        )

    def _build_signed_data(
        self, tst_info_data: bytes, md_algorithm: str, signature: bytes, signed_attrs: cms.CMSAttributes
    ) -> dict[str, Any]:
        data: dict[str, Any] = super()._build_signed_data(
            tst_info_data, md_algorithm, signature, signed_attrs
        )
        if self.tsa_cert.public_key.algorithm == "ec":
            info = data["signer_infos"][0]
            info["signature_algorithm"] = algos.SignedDigestAlgorithm({"algorithm": f"{md_algorithm}_ecdsa"})
        return data


@dataclass(frozen=True)
class TsaIdentity:
    cert_file: Path
    key_file: Path
    chain_file: Path | None = None  # intermediates / root to embed with the TSA certificate

    def timestamper(self) -> EcdsaTimeStamper:
        [cert] = _certs(self.cert_file.read_bytes())[:1]
        key = serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)
        der = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        extra = _certs(self.chain_file.read_bytes()) if self.chain_file else []
        return EcdsaTimeStamper(
            tsa_cert=cert,
            tsa_key=keys.PrivateKeyInfo.load(der),
            certs_to_embed=SimpleCertificateStore.from_certs(extra),  # type: ignore[no-untyped-call]
        )


class TsaServer:
    """The TSA in a thread of this process (tests) or as `python -m devstack.tsa` (the rehearsal).

    `fail_next` makes the next N requests answer 503, so tests can see custody's bounded retry."""

    def __init__(
        self,
        identity: TsaIdentity,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: tuple[Path, Path] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.stamper = identity.timestamper()
        self.auth = auth
        self.fail_next = 0
        self.requests = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
                pass

            def do_POST(self) -> None:
                with server._lock:
                    server.requests += 1
                    failing = server.fail_next > 0
                    server.fail_next = max(0, server.fail_next - 1)
                if server.auth is not None and not server.authorised(self.headers.get("Authorization")):
                    self._answer(
                        401, b"unauthorised", "text/plain", {"WWW-Authenticate": 'Basic realm="tsa"'}
                    )
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if failing:
                    self._answer(503, b"try later", "text/plain")
                    return
                if self.headers.get("Content-Type") != "application/timestamp-query":
                    self._answer(415, b"expected application/timestamp-query", "text/plain")
                    return
                try:
                    req = tsp.TimeStampReq.load(body)
                    reply = server.stamper.request_tsa_response(req).dump()
                except Exception as exc:  # a malformed query is the client's problem, said plainly
                    self._answer(400, f"bad timestamp query: {exc}".encode(), "text/plain")
                    return
                self._answer(200, reply, "application/timestamp-reply")

            def _answer(
                self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.scheme = "http"
        if tls is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="tsa", daemon=True)

    def authorised(self, header: str | None) -> bool:
        assert self.auth is not None
        expected = "Basic " + base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return hmac.compare_digest((header or "").encode(), expected.encode())

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}/tsa"

    def start(self) -> TsaServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", type=Path, required=True, help="TSA certificate (EKU timeStamping)")
    parser.add_argument("--key", type=Path, required=True, help="its private key")
    parser.add_argument("--chain", type=Path, help="certificates to embed beside it (PEM)")
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate")
    parser.add_argument("--tls-key", type=Path)
    parser.add_argument("--auth-user", help="require HTTP Basic auth as this user")
    parser.add_argument("--auth-password-file", type=Path)
    args = parser.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if bool(args.auth_user) != bool(args.auth_password_file):
        parser.error("--auth-user and --auth-password-file go together")
    server = TsaServer(
        TsaIdentity(args.cert, args.key, args.chain),
        host=args.host,
        port=args.port,
        tls=(args.tls_cert, args.tls_key) if args.tls_cert else None,
        auth=(args.auth_user, args.auth_password_file.read_text().strip()) if args.auth_user else None,
    ).start()
    print(f"RFC 3161 timestamp server at {server.url}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
