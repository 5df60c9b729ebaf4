"""Cases and who may see them.

A case belongs to the agency that opened it. Another agency (or one user of it) sees it only through
a live share: read-only, until the share expires or is revoked. To everyone else a case, and all that
hangs off it (requests, evidence, reports), is 'not found', so its existence does not leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, or_, select

from custody.errors import Conflict, Forbidden, NotFound, Unprocessable
from custody.models import Agency, Case, CaseShare, User
from custody.timeutil import rfc3339, utcnow

TITLE_MAX = 200


def create_case(*, session: Session, user: User, title: str, description: str) -> Case:
    title = title.strip()
    if not title:
        raise Unprocessable("The case title is empty; give the case a short title.")
    if len(title) > TITLE_MAX:
        raise Unprocessable(f"The case title has {len(title)} characters; keep it to {TITLE_MAX}.")
    case = Case(title=title, description=description.strip(), agency=user.agency, created_by=user.id)
    session.add(case)
    session.flush()
    return case


def _live_share_clause(user: User, now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        col(CaseShare.agency) == user.agency,
        or_(col(CaseShare.user_id).is_(None), col(CaseShare.user_id) == user.id),
        col(CaseShare.revoked_at).is_(None),
        col(CaseShare.expires_at) > now,
    )


def live_share(*, session: Session, user: User, case_id: str) -> CaseShare | None:
    """The share through which `user` may read this case now, if any."""
    stmt = (
        select(CaseShare)
        .where(CaseShare.case_id == case_id, _live_share_clause(user, utcnow()))
        .order_by(col(CaseShare.expires_at).desc())
    )
    return session.exec(stmt).first()


@dataclass(frozen=True, slots=True)
class CaseAccess:
    """A case and how the user reaches it: their own agency's (share None) or through a share."""

    case: Case
    share: CaseShare | None

    @property
    def via_share(self) -> str:
        """For ledger details: ' via share <id>' when read through a share, else ''."""
        return f" via share {self.share.id}" if self.share else ""


def case_access(*, session: Session, user: User, case_id: str) -> CaseAccess:
    case = session.get(Case, case_id)
    if case is not None:
        if case.agency == user.agency:
            return CaseAccess(case, None)
        share = live_share(session=session, user=user, case_id=case_id)
        if share is not None:
            return CaseAccess(case, share)
    raise NotFound(f"No case {case_id} in your agency or shared with you.")


def agency_of(*, session: Session, case_id: str) -> str:
    """The agency that owns a case ("" for none): what ledger entries about it are filed under."""
    case = session.get(Case, case_id)
    return case.agency if case is not None else ""


def get_case(*, session: Session, user: User, case_id: str) -> Case:
    """The case if the user may read it (own agency or a live share); anything else is 404."""
    return case_access(session=session, user=user, case_id=case_id).case


def get_case_for_write(*, session: Session, user: User, case_id: str) -> Case:
    """The case if the user's agency owns it. A share is read-only (403); no access at all is 404."""
    access = case_access(session=session, user=user, case_id=case_id)
    if access.share is not None:
        raise Forbidden(
            f"This case is shared with you read-only by {access.case.agency}; ask them to make changes."
        )
    return access.case


def list_cases(*, session: Session, user: User, limit: int, offset: int) -> list[Case]:
    """The user's agency's cases and the cases shared with them now, newest first."""
    shared = select(CaseShare.case_id).where(_live_share_clause(user, utcnow()))
    stmt = (
        select(Case)
        .where(or_(col(Case.agency) == user.agency, col(Case.id).in_(shared)))
        .order_by(col(Case.created_at).desc(), col(Case.id))
        .offset(offset)
        .limit(limit)
    )
    return list(session.exec(stmt).all())


# --- sharing ----------------------------------------------------------------------------------


def new_share(
    *,
    session: Session,
    user: User,
    case_id: str,
    agency: str,
    username: str | None,
    expires_at: datetime,
    reason: str,
    max_days: int,
) -> CaseShare:
    """A checked, not yet saved, read-only share of a case with another agency (or one user of it)
    until `expires_at`. The caller records it in the ledger, then saves it with `session.add`: on
    SQLite the ledger's writer must not wait behind this session's open write."""
    case = get_case_for_write(session=session, user=user, case_id=case_id)
    agency = agency.strip()
    if session.get(Agency, agency) is None:
        raise Unprocessable(f"Unknown agency {agency!r}; pick one of the program's agencies.")
    if agency == case.agency:
        raise Unprocessable(f"Everyone in {agency} already sees this case; share it with another agency.")
    if expires_at.tzinfo is None:
        raise Unprocessable("expires_at needs a time zone (RFC 3339, e.g. 2026-12-31T23:59:00Z).")
    now = utcnow()
    if expires_at <= now:
        raise Unprocessable("expires_at is in the past; a share must end in the future.")
    if expires_at > now + timedelta(days=max_days):
        raise Unprocessable(
            f"A share may last at most {max_days} days (CUSTODY_SHARE_MAX_DAYS); renew it when it ends."
        )
    target: User | None = None
    if username:
        target = session.exec(select(User).where(User.username == username.strip().lower())).first()
        if target is None or target.agency != agency:
            raise Unprocessable(
                f"No user {username!r} in {agency}; check the username or share with the agency."
            )
    share = CaseShare(
        case_id=case.id,
        agency=agency,
        user_id=target.id if target else None,
        reason=reason.strip()[:500],
        created_by=user.id,
        expires_at=expires_at,
    )
    return share


def describe_share(share: CaseShare, username: str | None) -> str:
    who = f"user {username} of {share.agency}" if username else f"agency {share.agency}"
    reason = f" ({share.reason})" if share.reason else ""
    return f"shared read-only with {who} until {rfc3339(share.expires_at)}, share {share.id}{reason}"


def list_shares(*, session: Session, user: User, case_id: str) -> list[CaseShare]:
    case = get_case_for_write(session=session, user=user, case_id=case_id)
    stmt = select(CaseShare).where(CaseShare.case_id == case.id).order_by(col(CaseShare.created_at).desc())
    return list(session.exec(stmt).all())


def revocable_share(*, session: Session, user: User, case_id: str, share_id: str) -> CaseShare:
    """The share if it can be revoked now (checked, unchanged); `mark_revoked` ends it."""
    case = get_case_for_write(session=session, user=user, case_id=case_id)
    share = session.get(CaseShare, share_id)
    if share is None or share.case_id != case.id:
        raise NotFound(f"No share {share_id} on this case.")
    if share.revoked_at is not None:
        raise Conflict(f"This share was already revoked at {rfc3339(share.revoked_at)}.")
    if share.expires_at <= utcnow():
        raise Conflict(
            f"This share already ended at {rfc3339(share.expires_at)}; there is nothing to revoke."
        )
    return share


def mark_revoked(*, session: Session, user: User, share: CaseShare) -> CaseShare:
    share.revoked_at = utcnow()
    share.revoked_by = user.id
    session.add(share)
    session.flush()
    return share


def share_state(share: CaseShare, now: datetime | None = None) -> str:
    now = now or utcnow()
    if share.revoked_at is not None:
        return "revoked"
    return "active" if share.expires_at > now else "expired"
