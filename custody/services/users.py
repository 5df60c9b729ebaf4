"""Staff users, their agencies, and throttled password logins."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from custody.agencies import HOME_AGENCY, PROGRAM_AGENCIES
from custody.errors import (
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthenticated,
    Unprocessable,
)
from custody.models import Agency, LoginFailure, Role, User
from custody.security import burn_password_check, hash_password, verify_password
from custody.timeutil import utcnow

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 12


def ensure_agencies(*, session: Session) -> None:
    """Add any program agency the database lacks (idempotent)."""
    have = set(session.exec(select(Agency.code)).all())
    for code, name in PROGRAM_AGENCIES:
        if code not in have:
            session.add(Agency(code=code, name=name))
    session.flush()


def list_agencies(*, session: Session) -> list[Agency]:
    return list(session.exec(select(Agency).order_by(Agency.code)).all())


def create_user(
    *,
    session: Session,
    username: str,
    password: str,
    role: str,
    agency: str,
    full_name: str = "",
    title: str = "",
) -> User:
    username = username.strip().lower()
    full_name, title = " ".join(full_name.split()), " ".join(title.split())
    if len(full_name) > 200 or len(title) > 100:
        raise Unprocessable("A name has at most 200 characters and a title at most 100.")
    if not USERNAME_RE.match(username):
        raise Unprocessable(
            "Usernames are 2-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit."
        )
    if role not in Role.__members__:
        raise Unprocessable(f"Unknown role {role!r}; use one of {', '.join(Role.__members__)}.")
    if session.get(Agency, agency) is None:
        codes = ", ".join(a.code for a in list_agencies(session=session))
        raise Unprocessable(f"Unknown agency {agency!r}; use one of {codes}.")
    if len(password) < MIN_PASSWORD:
        raise Unprocessable(f"Passwords need at least {MIN_PASSWORD} characters.")
    if session.exec(select(User).where(User.username == username)).first() is not None:
        raise Conflict(f"A user named {username!r} exists already; pick another username.")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        agency=agency,
        full_name=full_name,
        title=title,
    )
    session.add(user)
    session.flush()
    return user


def get_user(*, session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def _recent_failures(session: Session, column: str, value: str, since: datetime) -> int:
    t = LoginFailure.__table__.c  # type: ignore[attr-defined]
    stmt = sa.select(sa.func.count()).select_from(LoginFailure).where(t[column] == value, t.at >= since)
    return int(session.execute(stmt).scalar_one())


def authenticate(
    *, session: Session, username: str, password: str, client: str, max_failures: int, window_s: int
) -> User:
    """Check a password. After `max_failures` misses within `window_s` for one username (or from one
    client address, at 4x the count), further attempts are refused with 429 until the window passes.

    Failures are recorded in the database, so every API process shares the count.
    """
    username = username.strip().lower()
    since = utcnow() - timedelta(seconds=window_s)
    by_user = _recent_failures(session, "username", username, since)
    by_client = _recent_failures(session, "client", client, since)
    if by_user >= max_failures or by_client >= 4 * max_failures:
        raise TooManyRequests(
            f"Too many failed logins; wait {window_s} seconds before trying again.", retry_after_s=window_s
        )
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        burn_password_check(password)
    if user is None or not user.active or not verify_password(user.password_hash, password):
        session.add(LoginFailure(username=username[:64], client=client[:64]))
        session.commit()  # the failure must count even though the request fails
        raise Unauthenticated("Wrong username or password.")
    session.execute(sa.delete(LoginFailure).where(col(LoginFailure.username) == username))
    return user


#: Names and titles of the demo users (dev mode): people read names, so the demo has them too.
DEMO_PEOPLE: dict[str, tuple[str, str]] = {
    "investigator": ("Dana Reyes", "Detective"),
    "prosecutor": ("Sam Okafor", "Assistant United States Attorney"),
    "auditor": ("Lee Park", "Records Auditor"),
    "admin": ("Alex Morgan", "Program Administrator"),
}


def ensure_demo_users(*, session: Session, passwords: dict[str, str], agency: str) -> dict[str, str]:
    """Create one demo user per role (dev mode), named after the role. Returns username per role."""
    out: dict[str, str] = {}
    for role, password in passwords.items():
        username = f"demo-{role}"
        full_name, title = DEMO_PEOPLE.get(role, ("", ""))
        existing = session.exec(select(User).where(User.username == username)).first()
        if existing is None:
            create_user(
                session=session,
                username=username,
                password=password,
                role=role,
                agency=agency,
                full_name=full_name,
                title=title,
            )
        elif not existing.full_name:  # made before names existed
            existing.full_name, existing.title = full_name, title
            session.add(existing)
        out[role] = username
    return out


AGENCY_CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,31}$")


def create_agency(*, session: Session, code: str, name: str) -> Agency:
    """A partner agency joining the program (admins)."""
    code, name = code.strip().upper(), name.strip()
    if not AGENCY_CODE_RE.match(code):
        raise Unprocessable("Agency codes are 2-32 characters of A-Z, 0-9 and '-', such as 'MTPD'.")
    if not name or len(name) > 200:
        raise Unprocessable("Give the agency's full name (at most 200 characters).")
    if session.get(Agency, code) is not None:
        raise Conflict(f"Agency {code} exists already.")
    agency = Agency(code=code, name=name)
    session.add(agency)
    session.flush()
    return agency


def administers(actor: User, agency: str) -> bool:
    """An admin administers the accounts of their own agency; the program's administrators (admins
    of the home agency, who run the program) those of every agency, and the list of agencies."""
    return actor.role == Role.admin and actor.agency in (agency, HOME_AGENCY)


def check_administers(actor: User, agency: str) -> None:
    if not administers(actor, agency):
        raise Forbidden(
            f"An administrator of {actor.agency} manages {actor.agency}'s accounts only; ask a program "
            f"administrator ({HOME_AGENCY}) to manage {agency}'s."
        )


def check_runs_program(actor: User) -> None:
    """Agencies join the program through its administrators (admins of the home agency)."""
    if not (actor.role == Role.admin and actor.agency == HOME_AGENCY):
        raise Forbidden(f"Agencies join the program through a program administrator ({HOME_AGENCY}).")


def list_users(*, session: Session, actor: User) -> list[User]:
    """The accounts `actor` administers."""
    stmt = select(User).order_by(col(User.agency), col(User.username))
    if actor.agency != HOME_AGENCY:
        stmt = stmt.where(User.agency == actor.agency)
    return list(session.exec(stmt).all())


def set_active(*, session: Session, user_id: str, active: bool, by: User) -> User:
    user = get_user(session=session, user_id=user_id)
    check_administers(by, user.agency)
    if user.id == by.id and not active:
        raise Conflict("You cannot disable your own account; ask another administrator.")
    user.active = active
    session.add(user)
    session.flush()
    return user


def set_role(*, session: Session, user_id: str, role: str, by: User) -> tuple[User, str]:
    """Change a user's role (a permission change); returns the user and the role they had."""
    user = get_user(session=session, user_id=user_id)
    check_administers(by, user.agency)
    if role not in Role.__members__:
        raise Unprocessable(f"Unknown role {role!r}; use one of {', '.join(Role.__members__)}.")
    if user.id == by.id:
        raise Conflict("You cannot change your own role; ask another administrator.")
    before = user.role
    user.role = role
    session.add(user)
    session.flush()
    return user, before
