"""What a custody report says beyond the bundle: names for ids, the case's reference and agency, the
custodian who certifies it, and the program's time zone.

Why here and not in the route: the report's facts (who each actor is, how owners are shown, which
camera a request asked) are part of the report, and the same facts must come out whether the PDF is
made by the API, a benchmark or a test. The ledger keeps ids only; names are resolved at reading time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from custody.models import Agency, Camera, Case, Owner, User
from custody.services import requests as request_svc
from custody.services.people import owner_pseudonym, resolve_actors
from custody.timeutil import rfc3339
from reports.bundle import BundleFacts


@dataclass(frozen=True)
class Custodian:
    """The person who generates, and so certifies, the report."""

    name: str
    title: str
    role: str
    agency: str
    agency_name: str


@dataclass(frozen=True)
class ReportFacts:
    tz: ZoneInfo
    case_reference: str
    agency_name: str
    custodian: Custodian
    pseudonymise_owners: bool
    #: ledger actor id -> how the report names it ("Dana Reyes (investigator, MPD)")
    parties: dict[str, str]


def bundle_facts(*, session: Session, case: Case, user: User, pseudonymise: bool) -> BundleFacts:
    """The case's evidence, cameras and requests as the bundle states them."""
    evidence = request_svc.list_evidence(session=session, case=case)
    cameras: dict[str, dict[str, Any]] = {}
    requests = []
    for req in request_svc.list_requests(session=session, case=case):
        cam = session.get(Camera, req.camera_id)
        owner = session.get(Owner, cam.owner_id) if cam is not None else None
        if cam is not None:
            cameras[cam.id] = {"label": cam.label, "kind": cam.kind, "clock_offset_s": cam.clock_offset_s}
        shown = None
        if owner is not None:
            shown = owner_pseudonym(owner.id) if pseudonymise else owner.name
        requests.append(
            {
                "id": req.id,
                "camera_id": req.camera_id,
                "camera_label": cam.label if cam is not None else None,
                "kind": req.kind,
                "status": req.status,
                "owner": shown,
                "window_start": rfc3339(req.window_start),
                "window_end": rfc3339(req.window_end),
            }
        )
    return BundleFacts(
        case=case,
        evidence=evidence,
        cameras=cameras,
        requests=requests,
        generated_by=f"{user.display_name} ({user.role}, {user.agency})",
    )


def report_facts(
    *, session: Session, case: Case, user: User, bundle: dict[str, Any], tz: ZoneInfo, pseudonymise: bool
) -> ReportFacts:
    """Names for every actor in the bundle's entries (owners as one party each, by registered name or
    one stable pseudonym), and the certifying custodian."""
    actors = {json.loads(item["entry"])["actor"] for item in bundle["ledger"]["entries"]}
    parties = {
        actor: party.label(pseudonymise_owners=pseudonymise)
        for actor, party in resolve_actors(session=session, actors=actors).items()
    }
    agency = session.get(Agency, case.agency)
    own = session.get(Agency, user.agency)
    return ReportFacts(
        tz=tz,
        case_reference=case.reference,
        agency_name=agency.name if agency else case.agency,
        custodian=Custodian(
            name=user.display_name,
            title=user.title,
            role=user.role,
            agency=user.agency,
            agency_name=own.name if own else user.agency,
        ),
        pseudonymise_owners=pseudonymise,
        parties=parties,
    )
