"""Consent basis (custody/basis.py): no path records or attaches evidence without one, and step 6 of
`custody verify` (bundle_verify.check_basis) as a pure function."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from custody import basis
from custody.db import create_db_engine, migrate
from custody.ledger.bundle_verify import BasisMismatch, check_basis
from custody.ledger.entries import CustodyEvent, EventType, consent_facts
from custody.ledger.note import Signer
from custody.ledger.store import Ledger
from custody.models import Camera, Case, Evidence, FootageRequest, Incident, Owner, Upload
from custody.services import requests as svc
from custody.services import uploads

# --- step 6, pure ------------------------------------------------------------------------------

CONSENT: dict[str, Any] = {"type": "consent_given", "request_id": "rq-1", "case_id": "c-1",
           "facts": {"terms_version": "2026-11", "link_id": "tok-1"}}  # fmt: skip
CREATED: dict[str, Any] = {"type": "request_created", "request_id": "rq-1", "case_id": "c-1"}
RECEIVED: dict[str, Any] = {"type": "file_received", "request_id": "rq-1", "evidence_id": "ev-1",
            "facts": {"camera_id": "cam-1", "basis_index": 4}}  # fmt: skip
AGREEMENT: dict[str, Any] = {"type": "camera_approved", "facts": {"kind": "integrated", "camera_id": "cam-1",
                                                  "terms_version": "2026-11"}}  # fmt: skip
EVIDENCE: dict[str, Any] = {"id": "ev-1", "basis": {"type": "consent", "ledger_index": 4}}
CHAIN = [(3, CREATED), (4, CONSENT), (9, RECEIVED)]


def test_the_consent_basis_is_proven_with_its_terms_and_index() -> None:
    assert check_basis(EVIDENCE, CHAIN, []) == ("basis", "owner's consent, terms 2026-11, ledger entry 4")


def test_a_bundle_without_the_basis_entry_fails() -> None:
    with pytest.raises(BasisMismatch) as info:
        check_basis(EVIDENCE, [(3, CREATED), (9, RECEIVED)], [])
    assert info.value.field == "basis_index" and info.value.step == 6


def test_a_basis_index_pointing_elsewhere_fails() -> None:
    elsewhere = {**RECEIVED, "facts": {"camera_id": "cam-1", "basis_index": 3}}  # the request_created
    with pytest.raises(BasisMismatch) as info:
        check_basis(
            {**EVIDENCE, "basis": {"type": "consent", "ledger_index": 3}}, [*CHAIN[:2], (9, elsewhere)], []
        )
    assert info.value.field == "basis.type"
    with pytest.raises(BasisMismatch) as info:  # the bundle's statement moved, the log's not
        check_basis({**EVIDENCE, "basis": {"type": "consent", "ledger_index": 3}}, CHAIN, [])
    assert info.value.field == "basis.ledger_index"


def test_another_requests_consent_is_not_this_files_basis() -> None:
    other = {**CONSENT, "request_id": "rq-2"}
    with pytest.raises(BasisMismatch) as info:
        check_basis(EVIDENCE, [(3, CREATED), (4, other), (9, RECEIVED)], [])
    assert info.value.field == "basis_index"


def test_an_integration_agreement_outside_the_case_is_proven_for_its_camera_only() -> None:
    pulled = {**EVIDENCE, "basis": {"type": "integration_agreement", "ledger_index": 4}}
    chain = [(3, CREATED), (9, RECEIVED)]
    assert check_basis(pulled, chain, [(4, AGREEMENT)]) == (
        "basis", "owner's integration agreement, terms 2026-11, ledger entry 4"
    )  # fmt: skip
    other = {**AGREEMENT, "facts": {**AGREEMENT["facts"], "camera_id": "cam-2"}}
    with pytest.raises(BasisMismatch):
        check_basis(pulled, chain, [(4, other)])
    with pytest.raises(BasisMismatch):  # a consent basis claimed for an agreement entry
        check_basis(EVIDENCE, chain, [(4, AGREEMENT)])


def test_a_file_recorded_before_bases_were_passes_unproven_but_a_stated_one_must_be_bound() -> None:
    legacy = {**RECEIVED, "facts": {"camera_id": "cam-1"}}
    assert check_basis({"id": "ev-1", "basis": None}, [(3, CREATED), (9, legacy)], []) is None
    with pytest.raises(BasisMismatch):
        check_basis(EVIDENCE, [(3, CREATED), (4, CONSENT), (9, legacy)], [])


# --- the domain: no basis, no evidence ----------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[Engine, Ledger]]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'b.db'}")
    migrate(engine)  # 0012_basis included
    try:
        yield (
            engine,
            Ledger(engine, Signer.from_seed("custody.test/ledger", base64.b64encode(b"b" * 32).decode())),
        )
    finally:
        engine.dispose()


def _request(engine: Engine, *, kind: str = "registered") -> tuple[FootageRequest, Camera]:
    now = datetime.now(UTC)
    with Session(engine, expire_on_commit=False) as session:
        owner = Owner(name="O", email=f"o-{kind}@example.org")
        case = Case(title="t", agency="MPD", created_by="u")
        session.add_all([owner, case])
        session.flush()
        camera = Camera(owner_id=owner.id, label="door", lat=1.0, lon=1.0, lat_cell=1, kind=kind)
        incident = Incident(case_id=case.id, lat=1.0, lon=1.0, radius_m=10, window_start=now,
                            window_end=now + timedelta(minutes=5), created_by="u")  # fmt: skip
        session.add_all([camera, incident])
        session.flush()
        end = now + timedelta(minutes=5)
        req = FootageRequest(case_id=case.id, incident_id=incident.id, camera_id=camera.id, kind=kind,
                             window_start=now, window_end=end, status="consented")  # fmt: skip
        session.add(req)
        session.commit()
        return req, camera


def test_an_owners_file_without_recorded_consent_is_refused_then_names_it(db: tuple[Engine, Ledger]) -> None:
    engine, ledger = db
    req, _ = _request(engine)
    with Session(engine) as session:
        session.add(Upload(id="ev-1", request_id=req.id, filename="a.mp4", object_key="k", upload_id="u",
                           content_type="video/mp4", actor="tok-1", state="completing", size=3,
                           sha256="0" * 64))  # fmt: skip
        session.commit()
    with pytest.raises(basis.NoBasis):
        uploads.record(engine=engine, ledger=ledger, upload_id="ev-1", version_id="v1")
    with Session(engine) as session:
        assert session.get(Evidence, "ev-1") is None  # nothing recorded without a basis
    index = ledger.record(
        CustodyEvent(EventType.consent_given, actor="tok-1", case_id=req.case_id, request_id=req.id,
                     facts=consent_facts(terms_version="2026-11", link_id="tok-1")),
        idempotency_key=basis.consent_key(req.id),
    )  # fmt: skip
    ev = uploads.record(engine=engine, ledger=ledger, upload_id="ev-1", version_id="v1")
    assert (ev.basis_type, ev.basis_ledger_index) == ("consent", index)
    received = json.loads(ledger.entries_for(evidence_id="ev-1")[0][1])
    assert received["type"] == "file_received" and received["facts"]["basis_index"] == index


def test_no_path_adds_or_attaches_evidence_without_a_basis(db: tuple[Engine, Ledger]) -> None:
    engine, ledger = db
    req, camera = _request(engine, kind="integrated")
    with Session(engine) as session, pytest.raises(basis.NoBasis):
        svc.add_evidence(session=session, req=req, evidence_id="ev-2", filename="f", object_key="k",
                         version_id=None, size=1, sha256="0" * 64, content_type="video/mp4",
                         basis=None)  # fmt: skip
    with pytest.raises(basis.NoBasis):
        bare = Evidence(request_id=req.id, case_id=req.case_id, camera_id=camera.id, filename="f",
                        object_key="k", size=1, sha256="0" * 64, content_type="video/mp4")  # fmt: skip
        basis.require(bare)
    with pytest.raises(basis.NoBasis):  # never approved: no agreement
        basis.of_agreement(ledger, camera, terms_version="2026-11")
    camera.approved_at, camera.approved_by = datetime.now(UTC), "admin-1"
    agreement = basis.of_agreement(ledger, camera, terms_version="2026-11")
    assert basis.of_agreement(ledger, camera, terms_version="2026-12") == agreement  # written once
    entry = json.loads(ledger.entries(agreement.ledger_index, agreement.ledger_index + 1)[0][1])
    assert entry["type"] == "camera_approved" and entry["actor"] == "admin-1"
    assert entry["facts"] == {"kind": "integrated", "camera_id": camera.id, "terms_version": "2026-11"}
