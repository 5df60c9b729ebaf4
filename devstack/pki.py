"""A small certificate authority for the TLS that tests and the rehearsal put in front of every
component (Temporal, S3, SMTP, PostgreSQL, the reverse proxy, the RFC 3161 timestamp server).

Why our own CA and not self-signed leaves: clients are configured exactly as in production, with a
CA bundle to trust (`CUSTODY_*_CA`), a server name to check and, for mTLS, a client certificate the
server checks against the same CA. Nothing here is used in production; a department brings its own
PKI.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from custody.devsecrets import write_private


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_usage(*, ca: bool, content_commitment: bool = False) -> x509.KeyUsage:
    """Signatures only; a CA also signs certificates and CRLs; a document signer commits to content."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=content_commitment,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM text and as files (key file mode 0600)."""

    cert_pem: str
    key_pem: str
    cert_file: Path
    key_file: Path


class TestCA:
    """A CA (ECDSA P-256, one day old to one year ahead) that issues server, client and
    timestamping certificates into `folder`."""

    __test__ = False  # not a pytest class

    def __init__(self, folder: Path, name: str = "custody test CA") -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self._name)
            .issuer_name(self._name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                _key_usage(ca=True),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_pem = _pem(self.cert)
        self.ca_file = folder / "ca.pem"
        self.ca_file.write_text(self.cert_pem)

    def _issue(
        self,
        stem: str,
        common_name: str,
        *,
        usages: list[x509.ObjectIdentifier],
        hosts: tuple[str, ...] = (),
        organisation: str | None = None,
        content_commitment: bool = False,
    ) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if organisation:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                _key_usage(ca=False, content_commitment=content_commitment),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(usages), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
        )
        if hosts:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        issued = Issued(
            cert_pem=_pem(cert),
            key_pem=_key_pem(key),
            cert_file=self.folder / f"{stem}.pem",
            key_file=self.folder / f"{stem}-key.pem",
        )
        issued.cert_file.write_text(issued.cert_pem)
        write_private(issued.key_file, issued.key_pem)
        return issued

    def intermediate(self, folder: Path, name: str = "custody test intermediate CA") -> TestCA:
        """A CA issued by this one (its `ca_file` holds the intermediate only), for chains of three:
        an agency's signing certificate usually comes from an intermediate, not the root."""
        sub = TestCA(folder, name)
        now = datetime.datetime.now(datetime.UTC)
        sub.cert = (
            x509.CertificateBuilder()
            .subject_name(sub._name)
            .issuer_name(self._name)
            .public_key(sub._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=180))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                _key_usage(ca=True),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(sub._key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        sub.cert_pem = _pem(sub.cert)
        sub.ca_file.write_text(sub.cert_pem)
        return sub

    def server(self, stem: str, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Issued:
        """A TLS server certificate for `hosts` (IP addresses and DNS names)."""
        return self._issue(stem, hosts[0], usages=[ExtendedKeyUsageOID.SERVER_AUTH], hosts=hosts)

    def client(self, stem: str, common_name: str) -> Issued:
        """A TLS client certificate (mTLS)."""
        return self._issue(stem, common_name, usages=[ExtendedKeyUsageOID.CLIENT_AUTH])

    def timestamping(self, stem: str = "tsa") -> Issued:
        """An RFC 3161 time-stamping authority certificate (critical EKU timeStamping only)."""
        return self._issue(
            stem, "custody test timestamping authority", usages=[ExtendedKeyUsageOID.TIME_STAMPING]
        )

    def document_signer(self, stem: str, common_name: str, organisation: str) -> Issued:
        """A certificate an agency would sign its custody reports with."""
        return self._issue(
            stem,
            common_name,
            organisation=organisation,
            usages=[ExtendedKeyUsageOID.EMAIL_PROTECTION],
            content_commitment=True,
        )
