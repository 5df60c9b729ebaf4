"""Custody reports signed with an agency certificate from a chain (root -> intermediate -> signer) and
timestamped by a real RFC 3161 server (devstack/tsa.py) over HTTPS with Basic auth, all on the test CA;
checked with pyHanko's own validation, trusting only the test root.

Cheap: one TSA in a thread for the module, small PDFs signed at the reports/signing.py level, and one
report through the API on a fresh SQLite database.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext
from pypdf import PdfReader
from reportlab.pdfgen import canvas

from api.app import create_app
from custody.devsecrets import ensure_dev_secrets
from custody.settings import Settings
from devstack.pki import Issued, TestCA
from devstack.procs import free_port
from devstack.servers import tsa_child, wait_tsa
from devstack.tsa import TsaIdentity, TsaServer
from reports.signing import ReportSigner, TimestampUnavailable, TsaConfig
from tests.conftest import migrated
from tests.helpers import staff_headers

TSA_USER, TSA_PASSWORD = "custody", "tsa-secret"


@dataclass
class Pki:
    root: TestCA
    signer: Issued
    chain_pem: str  # leaf, then the intermediate: what CUSTODY_REPORT_SIGNING_CERT holds
    tsa: TsaServer
    tsa_config: TsaConfig
    folder: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    folder = tmp_path_factory.mktemp("report-pki")
    root = TestCA(folder / "root")
    agency_ca = root.intermediate(folder / "agency", "Metro PD issuing CA")
    signer = agency_ca.document_signer("report", "Metro PD custody reports", "Metro Police Department")
    tsa_cert = root.timestamping()
    web = root.server("tsa-web")
    server = TsaServer(
        TsaIdentity(tsa_cert.cert_file, tsa_cert.key_file, chain_file=root.ca_file),
        tls=(web.cert_file, web.key_file),
        auth=(TSA_USER, TSA_PASSWORD),
    ).start()
    try:
        yield Pki(
            root=root,
            signer=signer,
            chain_pem=signer.cert_pem + agency_ca.cert_pem,
            tsa=server,
            tsa_config=TsaConfig(server.url, root.ca_file, TSA_USER, TSA_PASSWORD, timeout_s=5, attempts=2),
            folder=folder,
        )
    finally:
        server.stop()


def _pdf() -> bytes:
    buf = io.BytesIO()
    page = canvas.Canvas(buf)
    page.drawString(72, 720, "A small report")
    page.showPage()
    page.save()
    return buf.getvalue()


def _validate(pdf: bytes, root: TestCA) -> PdfSignatureStatus:
    trust = asn1_x509.Certificate.load(root.cert.public_bytes(serialization.Encoding.DER))
    [sig] = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"  # PAdES
    return validate_pdf_signature(
        sig,
        signer_validation_context=ValidationContext(trust_roots=[trust]),
        ts_validation_context=ValidationContext(trust_roots=[trust]),
    )


def test_signed_with_the_chain_and_timestamped_is_pades_b_t(pki: Pki) -> None:
    signer = ReportSigner(pki.chain_pem, pki.signer.key_pem, pki.tsa_config)
    signed = signer.sign(_pdf())
    status = _validate(signed, pki.root)
    assert status.intact and status.valid and status.trusted, status.summary()
    assert status.signing_cert.subject.native["common_name"] == "Metro PD custody reports"
    # The intermediate travels in the CMS: the validator had only the root.
    [sig] = PdfFileReader(io.BytesIO(signed)).embedded_signatures
    embedded = {c.chosen.subject.native["common_name"] for c in sig.signed_data["certificates"]}
    assert "Metro PD issuing CA" in embedded
    ts = status.timestamp_validity
    assert ts is not None, "no signature timestamp: not PAdES B-T"
    assert ts.intact and ts.valid and ts.trusted, ts
    assert abs((datetime.now(UTC) - ts.timestamp).total_seconds()) < 60
    assert signer.timestamp_authority == "127.0.0.1"


def test_without_a_tsa_the_report_is_still_signed_b_b(pki: Pki) -> None:
    signer = ReportSigner(pki.chain_pem, pki.signer.key_pem)
    status = _validate(signer.sign(_pdf()), pki.root)
    assert status.intact and status.valid and status.trusted
    assert status.timestamp_validity is None
    assert signer.timestamp_authority is None


def test_a_tsa_that_fails_once_is_retried(pki: Pki) -> None:
    pki.tsa.fail_next = 1
    signed = ReportSigner(pki.chain_pem, pki.signer.key_pem, pki.tsa_config).sign(_pdf())
    assert _validate(signed, pki.root).timestamp_validity is not None


def test_a_tsa_that_keeps_failing_gives_a_clear_503_and_no_report(pki: Pki) -> None:
    pki.tsa.fail_next = 100
    before = pki.tsa.requests
    started = time.monotonic()
    try:
        with pytest.raises(TimestampUnavailable) as err:
            ReportSigner(pki.chain_pem, pki.signer.key_pem, pki.tsa_config).sign(_pdf())
    finally:
        pki.tsa.fail_next = 0
    assert pki.tsa.requests - before == 2  # bounded: CUSTODY_TSA_ATTEMPTS
    assert time.monotonic() - started < 5
    assert err.value.status == 503 and err.value.code == "timestamp_unavailable"
    assert pki.tsa.url in err.value.message and "HTTP 503" in err.value.message


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"password": "wrong"}, "credentials refused"),
        ({"ca_file": None}, "CUSTODY_TSA_CA_FILE"),  # the test root is in no system store
    ],
)
def test_tsa_auth_and_certificate_are_checked(pki: Pki, change: dict[str, object], says: str) -> None:
    before = pki.tsa.requests
    with pytest.raises(TimestampUnavailable, match=says):
        ReportSigner(pki.chain_pem, pki.signer.key_pem, replace(pki.tsa_config, **change)).sign(_pdf())  # type: ignore[arg-type]
    assert pki.tsa.requests - before <= 1  # neither is retried: asking again cannot fix it


def test_report_through_the_api_is_timestamped_and_says_so(
    pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("report-home")
    values: dict[str, object] = {
        "mode": "test",
        "home": home,
        "database_url": migrated(f"sqlite:///{home / 'custody.db'}"),  # as `custody migrate` would
        "demo_users": False,
        **{k: v for k, v in ensure_dev_secrets(home).items() if k in Settings.model_fields},
        "report_signing_cert": pki.chain_pem,
        "report_signing_key": pki.signer.key_pem,
        "tsa_url": pki.tsa.url,
        "tsa_ca_file": pki.root.ca_file,
        "tsa_username": TSA_USER,
        "tsa_password": TSA_PASSWORD,
        "tsa_attempts": 2,
    }
    settings = Settings(**values)  # type: ignore[arg-type]
    with TestClient(create_app(settings)) as api:
        h = staff_headers(api, "investigator")
        case_id = api.post("/cases", json={"title": f"Signed {uuid.uuid4().hex[:6]}"}, headers=h).json()["id"]
        report = api.get(f"/cases/{case_id}/custody-report.pdf", headers=h)
        assert report.status_code == 200, report.text
        pki.tsa.fail_next = 100
        try:
            refused = api.get(f"/cases/{case_id}/custody-report.pdf", headers=h)
        finally:
            pki.tsa.fail_next = 0
    status = _validate(report.content, pki.root)
    assert status.trusted and status.timestamp_validity is not None
    (pki.folder / "report.pdf").write_bytes(report.content)  # for a look with pdftoppm
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(report.content)).pages)
    assert "Metro PD custody reports, Metro Police Department" in text
    assert "Independently timestamped by the time-stamping authority 127.0.0.1" in " ".join(text.split())
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "timestamp_unavailable"
    assert pki.tsa.url in refused.json()["error"]["message"]
    assert refused.headers["Retry-After"] == "60"
    assert refused.headers["content-type"].startswith("application/json")  # no PDF, signed or not


def test_the_tsa_runs_as_a_process_as_the_rehearsal_starts_it(pki: Pki) -> None:
    """`python -m devstack.tsa` over plain http (the usual for TSAs: replies are signed) without auth."""
    port = free_port()
    tsa_cert = pki.root.timestamping("tsa-process")
    child = tsa_child(
        port=port,
        cert=tsa_cert.cert_file,
        key=tsa_cert.key_file,
        chain=pki.root.ca_file,
        log=pki.folder / "tsa.log",
    ).start()
    try:
        wait_tsa(child, port=port)
        config = TsaConfig(f"http://127.0.0.1:{port}/", timeout_s=5, attempts=2)
        signed = ReportSigner(pki.chain_pem, pki.signer.key_pem, config).sign(_pdf())
    finally:
        child.stop()
    ts = _validate(signed, pki.root).timestamp_validity
    assert ts is not None and ts.valid and ts.trusted


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"tsa_url": "tsa.example.org"}, "must be an http:// or https:// URL"),
        ({"tsa_url": "https://tsa.example.org", "tsa_username": "u"}, "go together"),
        ({"tsa_username": "u", "tsa_password": "p"}, "CUSTODY_TSA_URL is not"),
        (
            {"tsa_url": "http://tsa.example.org", "tsa_ca_file": "/etc/ssl/certs/ca-certificates.crt"},
            "unused",
        ),
        (
            {
                "mode": "production",
                "tsa_url": "http://tsa.example.org",
                "tsa_username": "u",
                "tsa_password": "p",
            },
            "password would cross the network in plain text",
        ),
    ],
)
def test_tsa_settings_that_cannot_work_are_refused(overrides: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Settings(**overrides)  # type: ignore[arg-type]


def test_each_report_costs_one_timestamp(pki: Pki) -> None:
    """pyHanko's sample token (to size the signature) is taken once per process and TSA, not per report."""
    signer = ReportSigner(pki.chain_pem, pki.signer.key_pem, pki.tsa_config)
    signer.sign(_pdf())
    before = pki.tsa.requests
    signer.sign(_pdf())
    assert pki.tsa.requests - before == 1
