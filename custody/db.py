"""Engine, sessions and migrations for SQLite (embedded default) and PostgreSQL (production).

Why the pragmas: SQLite runs in WAL mode so readers never block the one writer, with a busy timeout
so concurrent API and worker processes wait for the write lock instead of failing, and with foreign
keys enforced as PostgreSQL enforces them.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine
from sqlmodel import Session

from custody.errors import ConfigurationError
from custody.settings import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: Execution option: on SQLite, begin the transaction with BEGIN IMMEDIATE (take the write lock).
IMMEDIATE = "custody_sqlite_immediate"


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use the psycopg 3 driver for them."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def create_db_engine(
    url: str,
    *,
    pool_size: int = 20,
    max_overflow: int | None = None,
    pool_timeout_s: float = 5.0,
    lock_timeout_s: float = 30.0,
) -> Engine:
    """The one engine of a process. The pool holds as many connections as the threads that use them
    (the API's thread pool, the worker's activity threads), and a caller that still finds none free
    waits `pool_timeout_s`, not half a minute: the API answers 503 with Retry-After instead of
    holding its client (api/errors.py maps sqlalchemy's pool TimeoutError)."""
    url = normalise_url(url)
    overflow = pool_size if max_overflow is None else max_overflow
    pool = {"pool_size": pool_size, "max_overflow": overflow, "pool_timeout": pool_timeout_s}
    lock_ms = max(1, int(lock_timeout_s * 1000))
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        memory = not path or path == ":memory:"
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": lock_ms / 1000},
            **({} if memory else pool),
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={lock_ms}")
            cur.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns
            try:
                cur.execute("SELECT sin(0), asin(0), sqrt(1), radians(0)")
            except sqlite3.OperationalError:  # a SQLite built without its math functions
                for name, fn in (("sin", math.sin), ("cos", math.cos), ("asin", math.asin),
                                 ("sqrt", math.sqrt), ("radians", math.radians)):  # fmt: skip
                    dbapi_conn.create_function(name, 1, fn, deterministic=True)
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn: sa.Connection) -> None:
            # pysqlite begins a transaction just before the first write, so plain reads never hold a
            # stale snapshot that a later write would have to upgrade. A writer that must read first
            # under the lock (the ledger: read the size, then append) asks for BEGIN IMMEDIATE.
            if conn.get_execution_options().get(IMMEDIATE):
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # A lock held elsewhere (a stuck session, a manual LOCK TABLE) is waited for `lock_timeout_s`,
    # then the statement fails and the API answers 503, instead of waiting for ever.
    return sa.create_engine(
        url, pool_pre_ping=True, connect_args={"options": f"-c lock_timeout={lock_ms}"}, **pool
    )


def engine_for(settings: Settings, *, threads: int = 0) -> Engine:
    """The engine of a process with `threads` threads that may each hold a connection at once (the
    worker's activity threads): one connection each, plus a few for its background loops."""
    if threads:
        return create_db_engine(
            settings.db_url,
            pool_size=threads,
            max_overflow=8,
            pool_timeout_s=settings.db_pool_timeout_s,
            lock_timeout_s=settings.db_lock_timeout_s,
        )
    return create_db_engine(
        settings.db_url,
        pool_size=settings.db_pool_size,
        pool_timeout_s=settings.db_pool_timeout_s,
        lock_timeout_s=settings.db_lock_timeout_s,
    )


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def head_revision() -> str:
    """The newest migration this code ships (what `custody migrate` brings a database to)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "custody/migrations has no revisions"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for a database no migration has touched."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision and return (from, to). Idempotent.

    Outside dev mode only `custody migrate` calls this: many replicas starting at once must not each
    change the schema under the others, and an operator must choose when a migration runs (before
    the new code, after a backup). The API and the worker check instead (`require_schema`)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Two processes starting at once must not both create the tables.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(727001)"))
        from alembic.runtime.migration import MigrationContext

        before = MigrationContext.configure(conn).get_current_revision()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return before, head_revision()


def require_schema(engine: Engine) -> None:
    """Refuse to run on a database that is not at this code's newest revision, saying what to do."""
    need = head_revision()
    have = current_revision(engine)
    if have != need:
        where = engine.url.render_as_string(hide_password=True)
        raise ConfigurationError(
            f"the database ({where}) is at revision {have or 'none (empty)'}, this code needs {need}: "
            "run `custody migrate` (with the same CUSTODY_DATABASE_URL), then start again."
        )


def prepare_schema(engine: Engine, settings: Settings) -> None:
    """At a process's start: in dev mode (the embedded stack, `make run`) migrate on the spot; in
    test and production mode check the schema is at head and refuse to start otherwise."""
    if settings.mode == "dev":
        migrate(engine)
    else:
        require_schema(engine)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back everything on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def write_scope(engine: Engine) -> Iterator[Session]:
    """A short write transaction that reads what it decides on under the write lock: SQLite begins
    it with BEGIN IMMEDIATE; on PostgreSQL callers lock the rows they read with FOR UPDATE. For
    check-then-write steps two processes may race on (an upload starting while `complete` or a cancel
    lands). Never hold it across I/O."""
    with session_scope(engine.execution_options(**{IMMEDIATE: True})) as session:
        yield session
