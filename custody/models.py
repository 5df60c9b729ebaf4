"""Tables of the domain (SQLModel). Schema changes go through Alembic migrations in `migrations/`.

Why SQLModel: one class is both the table and a typed object the services return. API input/output
shapes live in `api/schemas.py`, so what is stored and what is exposed can differ.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from custody.timeutil import UtcDateTime, utcnow


def new_id() -> str:
    return str(uuid.uuid4())


class Role(StrEnum):
    investigator = "investigator"
    prosecutor = "prosecutor"
    auditor = "auditor"
    admin = "admin"


class CameraKind(StrEnum):
    registered = "registered"  # owner is asked for footage, consents per request
    integrated = "integrated"  # business opted in fully: footage is pulled without owner action


class Agency(SQLModel, table=True):
    __tablename__ = "agencies"

    code: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=200)


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    username: str = Field(max_length=64, sa_column_kwargs={"unique": True}, index=False)
    password_hash: str = Field(max_length=255)
    role: str = Field(max_length=16)
    agency: str = Field(foreign_key="agencies.code", max_length=32)
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class LoginFailure(SQLModel, table=True):
    """One failed login. Counted per username and per client address to throttle guessing."""

    __tablename__ = "login_failures"
    __table_args__ = (
        sa.Index("ix_login_failures_username_at", "username", "at"),
        sa.Index("ix_login_failures_client_at", "client", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64)
    client: str = Field(max_length=64)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Owner(SQLModel, table=True):
    """A resident or business that registered cameras with the program."""

    __tablename__ = "owners"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(max_length=200)
    email: str = Field(max_length=254, sa_column_kwargs={"unique": True})
    phone: str | None = Field(default=None, max_length=32)
    registration_consent_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    created_by: str | None = Field(default=None, max_length=36)


class Camera(SQLModel, table=True):
    """A registered or integrated camera. `lat_cell` feeds the (lat_cell, lon) search index."""

    __tablename__ = "cameras"
    __table_args__ = (sa.Index("ix_cameras_cell_lon", "lat_cell", "lon"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    owner_id: str = Field(foreign_key="owners.id", max_length=36, index=True)
    label: str = Field(max_length=200)
    lat: float
    lon: float
    lat_cell: int
    kind: str = Field(max_length=16)
    pull_url: str | None = Field(default=None, max_length=2048)
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class LedgerEntry(SQLModel, table=True):
    """One custody event, exactly as hashed (RFC 8785 bytes). Append-only: PostgreSQL refuses UPDATE
    and DELETE on this table with a trigger (migration 0002)."""

    __tablename__ = "ledger_entries"

    idx: int = Field(primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False})
    idempotency_key: str = Field(max_length=200, sa_column_kwargs={"unique": True})
    entry: str = Field(sa_type=sa.Text)
    leaf_hash: bytes = Field(sa_type=sa.LargeBinary(32))
    border: bytes = Field(sa_type=sa.LargeBinary)
    type: str = Field(max_length=32)
    case_id: str | None = Field(default=None, max_length=36, index=True)
    request_id: str | None = Field(default=None, max_length=36, index=True)
    evidence_id: str | None = Field(default=None, max_length=36, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class LedgerNode(SQLModel, table=True):
    """The hash of one complete subtree: (level, idx) covers leaves [idx * 2**level, (idx+1) * 2**level).
    Every complete subtree is kept, so appends are O(log n) and proofs never rebuild the tree."""

    __tablename__ = "ledger_nodes"

    level: int = Field(primary_key=True, sa_type=sa.SmallInteger, sa_column_kwargs={"autoincrement": False})
    idx: int = Field(primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False})
    hash: bytes = Field(sa_type=sa.LargeBinary(32))


class LedgerCheckpoint(SQLModel, table=True):
    """Every signed checkpoint ever issued, so an auditor can ask for consistency between any two."""

    __tablename__ = "ledger_checkpoints"

    tree_size: int = Field(primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False})
    root: bytes = Field(sa_type=sa.LargeBinary(32))
    note: str = Field(sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
