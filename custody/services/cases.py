"""Cases: created by investigators, visible to their own agency only (another agency gets 404)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from custody.errors import NotFound, Unprocessable
from custody.models import Case, User


def create_case(*, session: Session, user: User, title: str, description: str) -> Case:
    title = title.strip()
    if not title:
        raise Unprocessable("The case title is empty; give the case a short title.")
    case = Case(title=title, description=description.strip(), agency=user.agency, created_by=user.id)
    session.add(case)
    session.flush()
    return case


def get_case(*, session: Session, user: User, case_id: str) -> Case:
    """The case if the user's agency may see it. Any other case is 'not found', so that a case's
    existence does not leak across agencies."""
    case = session.get(Case, case_id)
    if case is None or case.agency != user.agency:
        raise NotFound(f"No case {case_id} in your agency.")
    return case


def list_cases(*, session: Session, user: User, limit: int, offset: int) -> list[Case]:
    stmt = (
        select(Case)
        .where(Case.agency == user.agency)
        .order_by(col(Case.created_at).desc(), col(Case.id))
        .offset(offset)
        .limit(limit)
    )
    return list(session.exec(stmt).all())
