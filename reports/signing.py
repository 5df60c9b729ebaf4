"""PAdES signatures on custody reports (pyHanko), with the agency's certificate, its chain and, when
`CUSTODY_TSA_URL` is set, an RFC 3161 timestamp.

Why a timestamp: without one (PAdES B-B) the signing time is custody's own clock and the signature
can only be checked while the certificate is valid; with one (B-T) an independent authority vouches
that the signature existed at that time, so the report stays verifiable after the certificate
expires or is rotated. When a TSA is configured but does not answer, the report is refused (503
naming the TSA): an unstamped report would look the same to its reader and prove less.

Embedded (dev) mode generates a self-signed certificate once and no TSA; the report's cover says so,
because a court would want a certificate from the agency's own PKI.
"""

from __future__ import annotations

import asyncio
import functools
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko_certvalidator.registry import SimpleCertificateStore

from custody.errors import ServiceUnavailable
from custody.mail import tls_context

if TYPE_CHECKING:
    from custody.settings import Settings


class TimestampUnavailable(ServiceUnavailable):
    """The configured TSA did not give a timestamp after the bounded retries; no report is given out."""

    code = "timestamp_unavailable"


@dataclass(frozen=True)
class TsaConfig:
    """Where the RFC 3161 timestamps come from (CUSTODY_TSA_*)."""

    url: str
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0
    attempts: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> TsaConfig | None:
        if not settings.tsa_url:
            return None
        return cls(
            url=settings.tsa_url,
            ca_file=settings.tsa_ca_file,
            username=settings.tsa_username,
            password=settings.tsa_password.get_secret_value() if settings.tsa_password else None,
            timeout_s=settings.tsa_timeout_s,
            attempts=settings.tsa_attempts,
        )

    @property
    def name(self) -> str:
        """The TSA as a reader of the report or an error message knows it: its host."""
        return urlsplit(self.url).hostname or self.url


class HttpTimeStamper(TimeStamper):
    """RFC 3161 over HTTP(S) with a verified TLS chain (CUSTODY_TSA_CA_FILE or system + certifi), HTTP
    Basic auth, and a bounded retry: `attempts` tries, each within `timeout_s`, half a second then one
    second apart. pyHanko's own HTTP client has no CA-file setting, hence this one."""

    def __init__(self, config: TsaConfig) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.config = config

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        cfg = self.config
        auth = httpx.BasicAuth(cfg.username, cfg.password or "") if cfg.username else None
        verify = tls_context(cfg.ca_file) if cfg.url.startswith("https:") else True
        last = "no answer"
        async with httpx.AsyncClient(verify=verify, timeout=cfg.timeout_s, auth=auth) as client:
            for attempt in range(cfg.attempts):
                if attempt:
                    await asyncio.sleep(min(0.5 * 2 ** (attempt - 1), 2.0))
                try:
                    res = await client.post(
                        cfg.url, content=req.dump(), headers={"Content-Type": "application/timestamp-query"}
                    )
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                    if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                        last += " (check CUSTODY_TSA_CA_FILE)"
                        break  # a certificate does not become trusted by asking again
                    continue
                if res.status_code in (401, 403):
                    last = f"HTTP {res.status_code}: credentials refused (CUSTODY_TSA_USERNAME/PASSWORD)"
                    break
                if res.status_code != 200:
                    last = f"HTTP {res.status_code}"
                    continue
                if res.headers.get("Content-Type", "").split(";")[0].strip() != "application/timestamp-reply":
                    last = f"answered {res.headers.get('Content-Type')!r}, not application/timestamp-reply"
                    continue
                try:
                    return tsp.TimeStampResp.load(res.content)
                except ValueError as exc:
                    last = f"an unreadable timestamp reply ({exc})"
        raise unavailable(cfg, last)


@functools.lru_cache(maxsize=8)
def timestamper_for(config: TsaConfig) -> HttpTimeStamper:
    """One timestamper per TSA configuration and process: pyHanko asks the TSA for a sample token once
    (to size the signature) and keeps it, so each later report costs one timestamp, not two (some
    authorities bill per token)."""
    return HttpTimeStamper(config)


def unavailable(cfg: TsaConfig, why: str) -> TimestampUnavailable:
    return TimestampUnavailable(
        f"The report was not given out: it must carry a timestamp from the timestamp authority "
        f"{cfg.name} ({cfg.url}), which gave none after {cfg.attempts} tries ({why}). No unsigned or "
        "unstamped report is issued. Try again in a minute; if it persists, an administrator must check "
        "CUSTODY_TSA_URL and that authority.",
        retry_after_s=60,
    )


def _load_chain(pem: str) -> list[x509.Certificate]:
    chain = x509.load_pem_x509_certificates(pem.encode())
    if not chain:
        raise ValueError("CUSTODY_REPORT_SIGNING_CERT holds no PEM certificate")
    return chain


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


@dataclass(frozen=True)
class ReportSigner:
    """Signs with `cert_pem`: the leaf first, then any intermediates, all embedded in the CMS so a
    reader's validator can build the path to the agency's root. With `tsa`, PAdES B-T; else B-B."""

    cert_pem: str
    key_pem: str
    tsa: TsaConfig | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ReportSigner:
        return cls(
            settings.secret("report_signing_cert"),
            settings.secret("report_signing_key"),
            TsaConfig.from_settings(settings),
        )

    @property
    def leaf(self) -> x509.Certificate:
        return _load_chain(self.cert_pem)[0]

    @property
    def self_signed(self) -> bool:
        cert = self.leaf
        return cert.issuer == cert.subject

    @property
    def subject(self) -> str:
        """The certificate's subject as people read it: "common name, organisation" (RFC 4514's
        escaped form, "CN=a\\, b", is for machines)."""
        name = self.leaf.subject
        parts = [
            str(a.value)
            for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME)
            for a in name.get_attributes_for_oid(oid)
        ]
        return ", ".join(parts) or name.rfc4514_string()

    @property
    def timestamp_authority(self) -> str | None:
        """The TSA's host when signatures are timestamped (PAdES B-T), else None (B-B)."""
        return self.tsa.name if self.tsa else None

    def _signer(self) -> signers.SimpleSigner:
        chain = [_asn1(c) for c in _load_chain(self.cert_pem)]
        key = serialization.load_pem_private_key(self.key_pem.encode(), password=None)
        der = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return signers.SimpleSigner(
            signing_cert=chain[0],
            signing_key=asn1_keys.PrivateKeyInfo.load(der),
            cert_registry=SimpleCertificateStore.from_certs(chain),  # type: ignore[no-untyped-call]
        )

    def sign(self, pdf: bytes) -> bytes:
        """A PAdES signature over the whole document in a field 'Custodian': B-T with the TSA's
        timestamp when one is configured (TimestampUnavailable when it gives none), else B-B."""
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        meta = signers.PdfSignatureMetadata(
            field_name="Custodian",
            subfilter=fields.SigSeedSubFilter.PADES,
            use_pades_lta=False,
            reason="Chain-of-custody report issued by custody",
        )
        timestamper = timestamper_for(self.tsa) if self.tsa else None
        started = time.monotonic()
        try:
            out = signers.sign_pdf(writer, meta, signer=self._signer(), timestamper=timestamper)
        except TimestampUnavailable:
            raise
        except TimestampRequestError as exc:  # pyHanko's check of the reply (status, nonce, imprint)
            assert self.tsa is not None
            raise unavailable(self.tsa, f"{exc} after {time.monotonic() - started:.1f} s") from exc
        signed: bytes = out.getvalue()
        return signed
