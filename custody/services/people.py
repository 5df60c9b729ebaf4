"""Who did it: the ledger's actor ids resolved to the people, owners and cameras behind them.

Why: the ledger keeps ids only (no personal data in entries), but people read names. The console's
audit pages and the custody report resolve every actor through this one place, so an owner is one
stable party (not one actor per consent link) and staff are "name (role, agency)" everywhere.

Actor forms written by custody:
  <user id>              a staff user
  <consent token id>     an owner acting through a consent link (the link itself is never stored)
  owner:<owner id>       an owner acting from their resident page (withdrawal)
  camera:<camera id>     an integrated camera that delivered footage
  custody-<part>         custody itself (workflow, verifier, ledger)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session, col, select

from custody.models import Agency, Camera, ConsentToken, FootageRequest, Owner, User

SYSTEM_ACTORS: dict[str, str] = {
    "custody-workflow": "custody (request workflow)",
    "custody-verifier": "custody (storage verifier)",
    "custody-ledger": "custody (ledger)",
}


@dataclass(frozen=True)
class Party:
    """One party as people read it. `party_id` is stable per person, owner, camera or system part."""

    actor: str  # the id as the ledger holds it
    kind: str  # staff | owner | camera | system | unknown
    party_id: str  # user id, owner id, camera id or the system actor
    name: str  # staff: full name (or username); owner: registered name; camera: its label
    role: str = ""  # staff role; owners: "owner"; cameras: "integrated camera"
    agency: str = ""  # agency code (staff)
    agency_name: str = ""
    title: str = ""  # staff job title
    camera_label: str = ""  # owners: the camera the link or request was for

    def label(self, *, pseudonymise_owners: bool = False) -> str:
        """ "Dana Reyes (investigator, MPD)", "Ann Lee (owner of “Front door”)", "custody (ledger)"."""
        if self.kind == "staff":
            return f"{self.name} ({self.role}, {self.agency})"
        if self.kind == "owner":
            shown = owner_pseudonym(self.party_id) if pseudonymise_owners else self.name
            return f"{shown} (owner of “{self.camera_label}”)" if self.camera_label else shown
        if self.kind == "camera":
            return f"integrated camera “{self.name}”"
        return self.name

    def short(self) -> str:
        """Without personal data: staff by name, owners as "owner of “Front door”"."""
        if self.kind == "owner":
            return f"owner of “{self.camera_label}”" if self.camera_label else "camera owner"
        return self.label()


def owner_pseudonym(owner_id: str) -> str:
    """One stable pseudonym per owner (the same in every report): "owner-3f2a91c0d4e5"."""
    return "owner-" + hashlib.sha256(owner_id.encode()).hexdigest()[:12]


def resolve_actors(*, session: Session, actors: Iterable[str]) -> dict[str, Party]:
    """Every actor in `actors` as a Party, with a few queries whatever their number."""
    wanted = {a for a in actors if a}
    out: dict[str, Party] = {}
    for actor in wanted:
        if actor in SYSTEM_ACTORS:
            out[actor] = Party(actor, "system", actor, SYSTEM_ACTORS[actor])
    agencies = {a.code: a.name for a in session.exec(select(Agency)).all()}

    users = session.exec(select(User).where(col(User.id).in_(wanted - out.keys()))).all()
    for user in users:
        out[user.id] = Party(
            user.id,
            "staff",
            user.id,
            user.display_name,
            role=user.role,
            agency=user.agency,
            agency_name=agencies.get(user.agency, user.agency),
            title=user.title,
        )

    rest = wanted - out.keys()
    camera_ids = {a.removeprefix("camera:") for a in rest if a.startswith("camera:")}
    owner_ids = {a.removeprefix("owner:") for a in rest if a.startswith("owner:")}
    token_ids = {a for a in rest if ":" not in a}
    token_cameras: dict[str, str] = {}
    if token_ids:
        rows = session.exec(
            select(ConsentToken.token_id, FootageRequest.camera_id)
            .join(FootageRequest, col(FootageRequest.id) == col(ConsentToken.request_id))
            .where(col(ConsentToken.token_id).in_(token_ids))
        ).all()
        token_cameras = {token: camera for token, camera in rows}
    cameras = {
        c.id: c
        for c in session.exec(
            select(Camera).where(col(Camera.id).in_(camera_ids | set(token_cameras.values())))
        ).all()
    }
    owners_by_id = {
        o.id: o
        for o in session.exec(
            select(Owner).where(col(Owner.id).in_(owner_ids | {c.owner_id for c in cameras.values()}))
        ).all()
    }
    for actor in rest:
        if actor.startswith("camera:"):
            cam = cameras.get(actor.removeprefix("camera:"))
            if cam is not None:
                out[actor] = Party(actor, "camera", cam.id, cam.label, role="integrated camera")
        elif actor.startswith("owner:"):
            owner = owners_by_id.get(actor.removeprefix("owner:"))
            if owner is not None:
                out[actor] = Party(actor, "owner", owner.id, owner.name, role="owner")
        elif actor in token_cameras:
            cam = cameras.get(token_cameras[actor])
            owner = owners_by_id.get(cam.owner_id) if cam is not None else None
            if cam is not None and owner is not None:
                out[actor] = Party(actor, "owner", owner.id, owner.name, role="owner", camera_label=cam.label)
    for actor in wanted - out.keys():
        out[actor] = Party(actor, "unknown", actor, f"unknown actor {actor}")
    return out
