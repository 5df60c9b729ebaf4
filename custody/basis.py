"""The basis of every evidence item: what allows custody to hold it, as a ledger entry.

A file an owner sent rests on the owner's consent: the request's `consent_given` entry, which binds
the terms version the owner accepted and the consent link's id. A file pulled from an integrated
camera rests on the owner's integration agreement: the camera's `camera_approved` entry, which
binds the terms version and the approving administrator. Each evidence row names its basis (type
and ledger index), its `file_received` entry binds the index (`basis_index`), and a custody bundle
carries the basis entry so `custody verify` can check it offline. No path records or attaches
evidence without one: `assign` and `require` raise NoBasis.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from custody.errors import CustodyError
from custody.ledger.entries import CustodyEvent, EventType, agreement_facts
from custody.ledger.store import Ledger
from custody.models import Camera, CameraKind, Evidence


class BasisType(StrEnum):
    consent = "consent"
    integration_agreement = "integration_agreement"


#: The ledger event each basis type is.
BASIS_EVENTS = {
    BasisType.consent: EventType.consent_given,
    BasisType.integration_agreement: EventType.camera_approved,
}


class NoBasis(CustodyError):
    """Evidence would be recorded or attached with no consent or integration agreement behind it."""

    code = "no_basis"
    status = 409


@dataclass(frozen=True, slots=True)
class Basis:
    type: BasisType
    ledger_index: int


def consent_key(request_id: str) -> str:
    """The idempotency key the workflow's `consented` step writes `consent_given` under."""
    return f"{request_id}:consented"


def agreement_key(camera_id: str) -> str:
    return f"camera:{camera_id}:agreement"


def of_consent(ledger: Ledger, request_id: str) -> Basis:
    index = ledger.index_of(consent_key(request_id))
    if index is None:
        raise NoBasis(f"request {request_id} has no recorded consent; no file can be kept for it")
    return Basis(BasisType.consent, index)


def of_agreement(ledger: Ledger, camera: Camera, *, terms_version: str) -> Basis:
    """The camera's integration agreement. A camera approved before agreements were recorded gets its
    entry now (idempotent), in its approver's name; a camera never approved has none."""
    index = ledger.index_of(agreement_key(camera.id))
    if index is None:
        index = record_agreement(ledger, camera, terms_version=terms_version)
    if index is None:
        raise NoBasis(f"integrated camera {camera.id} has no approved integration agreement")
    return Basis(BasisType.integration_agreement, index)


def record_agreement(
    ledger: Ledger, camera: Camera, *, terms_version: str, component: str = "worker"
) -> int | None:
    """Write an approved integrated camera's `camera_approved` entry once; None for any other camera.
    It is also the audit trail's record of the approval (CJIS 5.4.1.1): `component` says where."""
    if camera.kind != CameraKind.integrated or camera.approved_at is None or not camera.active:
        return None
    return ledger.record(
        CustodyEvent(
            EventType.camera_approved,
            actor=camera.approved_by or "custody",
            agency=camera.agency,
            detail=f"camera {camera.id}: the owner's integration agreement, approved",
            facts=agreement_facts(camera_id=camera.id, terms_version=terms_version),
            component=component,
            outcome="success",
        ),
        idempotency_key=agreement_key(camera.id),
    )


def assign(ev: Evidence, basis: Basis | None) -> Evidence:
    """Name the evidence's basis; refuse evidence without one."""
    if basis is None:
        raise NoBasis(
            f"evidence {ev.id} has no basis: neither the owner's consent nor an integration agreement"
        )
    ev.basis_type, ev.basis_ledger_index = str(basis.type), basis.ledger_index
    return ev


def require(ev: Evidence) -> Basis:
    """The evidence's basis, or NoBasis (before a file is attached to a case)."""
    if ev.basis_type not in tuple(BasisType) or ev.basis_ledger_index is None:
        raise NoBasis(f"evidence {ev.id} names no basis; it cannot be attached")
    return Basis(BasisType(ev.basis_type), ev.basis_ledger_index)
