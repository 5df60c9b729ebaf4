"""PAdES signatures on custody reports (pyHanko), with the certificate and key from settings.

Embedded (dev) mode generates a self-signed certificate once; the report's cover says so, because a
court would want a certificate from the agency's own PKI.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko_certvalidator.registry import SimpleCertificateStore


@dataclass(frozen=True)
class ReportSigner:
    cert_pem: str
    key_pem: str

    @property
    def self_signed(self) -> bool:
        cert = x509.load_pem_x509_certificate(self.cert_pem.encode())
        return cert.issuer == cert.subject

    @property
    def subject(self) -> str:
        """The certificate's subject as people read it: "common name, organisation" (RFC 4514's
        escaped form, "CN=a\\, b", is for machines)."""
        name = x509.load_pem_x509_certificate(self.cert_pem.encode()).subject
        parts = [
            str(a.value)
            for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME)
            for a in name.get_attributes_for_oid(oid)
        ]
        return ", ".join(parts) or name.rfc4514_string()

    def _signer(self) -> signers.SimpleSigner:
        cert = asn1_x509.Certificate.load(
            x509.load_pem_x509_certificate(self.cert_pem.encode()).public_bytes(serialization.Encoding.DER)
        )
        key = serialization.load_pem_private_key(self.key_pem.encode(), password=None)
        der = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return signers.SimpleSigner(
            signing_cert=cert,
            signing_key=asn1_keys.PrivateKeyInfo.load(der),
            cert_registry=SimpleCertificateStore.from_certs([cert]),  # type: ignore[no-untyped-call]
        )

    def sign(self, pdf: bytes) -> bytes:
        """A PAdES baseline signature over the whole document, in a signature field 'Custodian'."""
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        meta = signers.PdfSignatureMetadata(
            field_name="Custodian",
            subfilter=fields.SigSeedSubFilter.PADES,
            reason="Chain-of-custody report issued by custody",
        )
        out = signers.sign_pdf(writer, meta, signer=self._signer())
        signed: bytes = out.getvalue()
        return signed
