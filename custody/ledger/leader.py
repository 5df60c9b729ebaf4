"""Leadership for the checkpointer: of all API and worker processes of a deployment, one signs.

Why: every process used to sign checkpoints on its own timer, so N replicas signed N checkpoints a
round, raced on the same tree size and filled the checkpoint table with duplicates. A Temporal
Schedule would need the worker up to sign at all; a lock in the database the ledger already lives
in needs nothing more and fails over by itself:

- PostgreSQL: a session advisory lock (`pg_try_advisory_lock`) held on a dedicated connection,
  outside the pool. The server drops it the moment that connection ends (the process died, or the
  network went), and the next contender's try succeeds. A leader whose connection fails gives up
  leadership at once and contends again.
- SQLite (one machine by definition): an OS lock (`flock`) on a file beside the database. The kernel
  drops it when the holding process dies.

The lock file / the connection's `application_name` names the holder (host:pid), so
`current_leader` shows who leads without asking every process.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

log = logging.getLogger("custody.ledger")

#: The advisory-lock key of the checkpointer, distinct from custody.db.migrate (727001) and the
#: ledger's append lock (custody.ledger.store.ADVISORY_LOCK_KEY, 727002).
CHECKPOINTER_LOCK_KEY = 727_003
APP_NAME_PREFIX = "custody-checkpointer "


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Leadership(Protocol):
    def hold(self) -> bool:
        """Try to become (or check still being) the leader; True while this process leads."""

    def release(self) -> None:
        """Give leadership up (at shutdown), so another process takes over without waiting."""


class PostgresLeadership:
    """A session advisory lock on one connection of its own (not from the pool: a pooled connection
    would be handed back and reused, and the lock with it)."""

    def __init__(self, engine: Engine, key: int = CHECKPOINTER_LOCK_KEY) -> None:
        self.key = key
        self._engine = sa.create_engine(
            engine.url,
            poolclass=sa.pool.NullPool,
            connect_args={
                "application_name": APP_NAME_PREFIX + holder_name(),
                "connect_timeout": 5,
                # A round never waits long on a server that stopped answering: it counts as lost.
                # A leader whose host vanished is noticed by the server within about a minute (its
                # keepalives, set for this session), so its lock does not outlive it by the hours
                # of TCP's default; the client side likewise notices a vanished server.
                "options": "-c statement_timeout=5000 -c tcp_keepalives_idle=30"
                " -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3",
                "keepalives": 1,
                "keepalives_idle": 30,
                "keepalives_interval": 10,
                "keepalives_count": 3,
            },
        )
        self._conn: sa.Connection | None = None
        self._leading = False

    def hold(self) -> bool:
        try:
            if self._conn is None:
                self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            if self._leading:
                # Still ours? The query fails if the connection died; the lock then went with it.
                held = self._conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                        " AND pid = pg_backend_pid() AND objid = :key AND objsubid = 1"
                    ),
                    {"key": self.key},
                ).scalar_one()
                self._leading = bool(held)
            else:
                self._leading = bool(
                    self._conn.execute(
                        sa.text("SELECT pg_try_advisory_lock(CAST(:key AS bigint))"), {"key": self.key}
                    ).scalar_one()
                )
        except sa.exc.DBAPIError as exc:
            if self._leading:  # a standby that cannot connect says nothing each round
                log.warning(
                    "checkpointer: lost the database connection that holds leadership (%s)",
                    exc.__class__.__name__,
                )
            self._drop()
        return self._leading

    def _drop(self) -> None:
        self._leading = False
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.invalidate()
                self._conn.close()
        self._conn = None

    def release(self) -> None:
        if self._conn is not None and self._leading:
            with contextlib.suppress(Exception):
                self._conn.execute(
                    sa.text("SELECT pg_advisory_unlock(CAST(:key AS bigint))"), {"key": self.key}
                )
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn, self._leading = None, False
        self._engine.dispose()


class FileLeadership:
    """An exclusive `flock` on `<database>.checkpointer.lock`. flock locks belong to the open file,
    so two contenders in one process exclude each other too (tests run an API and a worker in one)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def hold(self) -> bool:
        if self._fd is not None:
            return True  # the kernel keeps it for as long as this process keeps the file open
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, holder_name().encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the lock
            self._fd = None


class SoleLeadership:
    """An in-memory SQLite database belongs to one process: it always leads."""

    def hold(self) -> bool:
        return True

    def release(self) -> None:
        return None


def lock_file(engine: Engine) -> Path | None:
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    return Path(database).resolve().with_name(Path(database).name + ".checkpointer.lock")


def leadership_for(engine: Engine) -> Leadership:
    """The leadership that fits the database: an advisory lock on PostgreSQL, a file lock on SQLite."""
    if engine.dialect.name == "postgresql":
        return PostgresLeadership(engine)
    path = lock_file(engine)
    return FileLeadership(path) if path is not None else SoleLeadership()


def current_leader(engine: Engine) -> str | None:
    """Who signs checkpoints now (host:pid), as the database or the lock file says; None when no
    process leads. Cheap: one query or one file read, for the rehearsal and operators."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            rows = (
                conn.execute(
                    sa.text(
                        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                        " WHERE l.locktype = 'advisory' AND l.granted AND l.objid = :key AND l.objsubid = 1"
                        " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                    ),
                    {"key": CHECKPOINTER_LOCK_KEY},
                )
                .scalars()
                .all()
            )
        names = [str(r).removeprefix(APP_NAME_PREFIX) for r in rows]
        return ",".join(names) or None
    path = lock_file(engine)
    if path is None or not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # held: the holder wrote its name
            return path.read_text().strip() or "unknown"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
