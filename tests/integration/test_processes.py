"""The production processes: `custody migrate` is the only way the schema changes outside dev mode
(serve and worker refuse a database not at head), and one checkpointer signs for the whole
deployment, with another process taking over when it dies. Real processes on both databases."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from custody.db import create_db_engine, current_revision, head_revision, migrate
from custody.ledger.entries import CustodyEvent, EventType
from custody.ledger.leader import CHECKPOINTER_LOCK_KEY, PostgresLeadership, current_leader, leadership_for
from custody.ledger.note import Signer
from custody.ledger.store import Ledger
from devstack.procs import free_port
from tests.conftest import Stack, _create_pg_database, _drop_pg_database, migrated
from tests.helpers import settings_env
from tests.integration.ledger_appender import ORIGIN, SEED_B64

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database no migration has touched."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'custody.db'}"
        return
    name, url = _create_pg_database()
    try:
        yield url
    finally:
        _drop_pg_database(name)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _wait(what: str, check: Callable[[], bool], timeout_s: float = 60) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(0.1)
    return time.monotonic() - start


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_serve_and_worker_refuse_an_unmigrated_database_until_custody_migrate(
    stack: Stack, empty_db: str, tmp_path: Path
) -> None:
    port = free_port()
    settings = stack.settings(database_url=empty_db, task_queue=f"proc-{uuid.uuid4().hex[:8]}", api_port=port)
    env = settings_env(settings)
    head = head_revision()

    # Both refuse, at once, with what to do; nothing is created in the database.
    serve = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve"], env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    worker = _cli("worker", env=env)
    _, serve_err = serve.communicate(timeout=120)
    for status, text in ((serve.returncode, serve_err), (worker.returncode, worker.stderr)):
        assert status == 1, text
        assert f"is at revision none (empty), this code needs {head}" in text, text
        assert "run `custody migrate`" in text
    engine = create_db_engine(empty_db)
    try:
        assert current_revision(engine) is None

        done = _cli("migrate", env=env)
        assert done.returncode == 0, done.stderr
        assert f"migrated from an empty database to revision {head}" in done.stdout
        assert current_revision(engine) == head
    finally:
        engine.dispose()

    # Now both start: the API answers, the worker polls its task queue.
    log = (tmp_path / "worker.log").open("w")
    api = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--no-access-log"], env=env, cwd=ROOT)
    wk = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "worker"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        again = _cli("migrate", env=env)  # meanwhile: a second run changes nothing
        assert again.returncode == 0 and f"already at revision {head}" in again.stdout, again.stderr
        _wait("the API", lambda: _answers(f"http://127.0.0.1:{port}/docs") and api.poll() is None)
        _wait(
            "the worker",
            lambda: "worker ready" in (tmp_path / "worker.log").read_text() or wk.poll() is not None,
        )
        assert wk.poll() is None, (tmp_path / "worker.log").read_text()
    finally:
        _stop(api)
        _stop(wk)
        log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_behind_schema_is_named_with_both_revisions(db_url: str, tmp_path: Path) -> None:
    """A database one migration behind (a deploy of new code before `custody migrate`) is refused too."""
    from custody.db import require_schema
    from custody.errors import ConfigurationError

    url = f"sqlite:///{tmp_path / 'old.db'}" if db_url.startswith("sqlite") else None
    if url is None:
        name, url = _create_pg_database()
    else:
        name = None
    engine = create_db_engine(url)
    try:
        from alembic import command

        from custody.db import alembic_config

        with engine.begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head-1")
        old = current_revision(engine)
        with pytest.raises(ConfigurationError) as info:
            require_schema(engine)
        assert f"is at revision {old}, this code needs {head_revision()}" in info.value.message
        assert migrate(engine) == (old, head_revision())
        require_schema(engine)
    finally:
        engine.dispose()
        if name is not None:
            _drop_pg_database(name)


# --- one checkpointer -------------------------------------------------------------------------------


class Contender:
    def __init__(self, url: str, log: Path, interval_s: float) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.checkpointer_child", url, str(interval_s)],
            cwd=ROOT,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        self.name = f"{socket.gethostname()}:{self.proc.pid}"

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def said(self, text: str) -> bool:
        assert self.proc.poll() is None or text == "", self.log.read_text()
        return text in self.lines()

    def signed(self) -> list[int]:
        return [int(line.split()[1]) for line in self.lines() if line.startswith("signed ")]


def _append(ledger: Ledger, n: int) -> int:
    ledger.append(
        [
            (
                uuid.uuid4().hex,
                CustodyEvent(EventType.evidence_viewed, actor="u", agency="MPD", case_id=str(uuid.uuid4())),
            )
            for _ in range(n)
        ]
    )
    return ledger.size()


def test_one_checkpointer_signs_and_another_takes_over_when_it_dies(db_url: str, tmp_path: Path) -> None:
    """Two processes contend: exactly one leads and signs; kill -9 it and the other leads and signs
    within the interval; the leader is named by `current_leader` throughout."""
    interval = 0.5
    if db_url.startswith("sqlite"):
        url, name = f"sqlite:///{tmp_path / 'leader.db'}", None
    else:
        name, url = _create_pg_database()
    engine = create_db_engine(url)
    migrate(engine)
    ledger = Ledger(engine, Signer.from_seed(ORIGIN, SEED_B64))
    a = Contender(url, tmp_path / "a.log", interval)
    b: Contender | None = None
    try:
        _wait("A leads", lambda: a.said("checkpointer: leading"))
        b = Contender(url, tmp_path / "b.log", interval)
        _wait("B stands by", lambda: b is not None and b.said("checkpointer: standing by"))
        assert current_leader(engine) == a.name

        size = _append(ledger, 3)
        _wait("A signs", lambda: size in a.signed())
        size = _append(ledger, 2)
        _wait("A signs again", lambda: size in a.signed())
        time.sleep(2 * interval)
        assert b.signed() == [] and "checkpointer: leading" not in b.lines()

        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        killed = time.monotonic()
        size = _append(ledger, 4)
        _wait("B leads", lambda: b is not None and b.said("checkpointer: leading"), timeout_s=10)
        took = time.monotonic() - killed
        assert took < interval + 2.5, f"B took over {took:.1f} s after A died"
        _wait("B signs", lambda: b is not None and size in b.signed())
        assert ledger.latest_checkpoint() is not None and ledger.latest_checkpoint().tree_size == size  # type: ignore[union-attr]
        _wait("B is named", lambda: current_leader(engine) == b.name if b else False, timeout_s=5)
        env = {
            **os.environ,
            "CUSTODY_MODE": "dev",
            "CUSTODY_HOME": str(tmp_path),
            "CUSTODY_DATABASE_URL": url,
        }
        shown = subprocess.run(
            [sys.executable, "-m", "cli.main", "ledger", "leader"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert shown.returncode == 0 and shown.stdout.strip() == b.name, shown.stderr
        # Each change logged once: B stood by once and led once.
        assert b.lines().count("checkpointer: standing by") == 1
        assert b.lines().count("checkpointer: leading") == 1

        _stop(b.proc)
        _wait("nobody leads", lambda: current_leader(engine) is None, timeout_s=10)
    finally:
        for c in (a, b):
            if c is not None:
                _stop(c.proc)
        engine.dispose()
        if name is not None:
            _drop_pg_database(name)


def test_postgres_leadership_is_lost_with_its_connection(db_url: str) -> None:
    """Two leaderships on separate connections in one process: one holds the lock; when the server
    ends the leader's session (a dead connection), it knows it lost, and the other takes over."""
    if not db_url.startswith("postgresql"):
        pytest.skip("the advisory lock is PostgreSQL's; SQLite's file lock is tested above")
    import sqlalchemy as sa

    from tests.conftest import _create_pg_database, _drop_pg_database

    # A database of its own: the session's may have a checkpointer leading already (the app fixture).
    name, url = _create_pg_database()
    engine = create_db_engine(url)
    first, second = PostgresLeadership(engine), PostgresLeadership(engine)
    try:
        from custody.ledger.store import ADVISORY_LOCK_KEY

        assert CHECKPOINTER_LOCK_KEY != ADVISORY_LOCK_KEY  # else every append waits on the leader
        assert first.hold() and not second.hold()
        assert first.hold(), "a leader keeps leading"
        with engine.connect() as conn:  # the server ends the leader's session (as if its host died)
            ended = (
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                        " AND granted AND objid = :key AND objsubid = 1"
                        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                    ),
                    {"key": CHECKPOINTER_LOCK_KEY},
                )
                .scalars()
                .all()
            )
        assert ended == [True]
        _wait("the session ends", lambda: current_leader(engine) is None, timeout_s=10)
        assert not first.hold(), "the old leader must know it lost the lock with its connection"
        assert second.hold(), "the other contender takes over"
        assert not first.hold(), "and the old leader, reconnected, stands by"
        assert second.hold()
    finally:
        first.release()
        second.release()
        engine.dispose()
        _drop_pg_database(name)


def test_sqlite_file_lock_excludes_a_second_contender(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'c.db'}")
    first, second = leadership_for(engine), leadership_for(engine)
    try:
        assert first.hold() and not second.hold()
        assert current_leader(engine) == f"{socket.gethostname()}:{os.getpid()}"
        first.release()
        assert current_leader(engine) is None
        assert second.hold()
    finally:
        first.release()
        second.release()
        engine.dispose()


def test_an_operator_signs_everyone_out(stack: Stack, tmp_path: Path) -> None:
    """`custody sessions end-all [--kind]`: the browser sessions a JWT key rotation leaves standing
    (they live in the database) end at once; the kind filter keeps the other kind's."""
    from custody.db import session_scope
    from custody.models import WebSession
    from custody.services import websessions

    settings = stack.settings(database_url=migrated(f"sqlite:///{tmp_path / 'sessions.db'}"))
    engine = create_db_engine(settings.db_url)
    try:
        with session_scope(engine) as s:
            for kind in ("staff", "staff", "resident"):
                websessions.start(session=s, kind=kind, subject_id=str(uuid.uuid4()), ttl_s=3600)

        def kinds() -> list[str]:
            with session_scope(engine) as s:
                return sorted(row.kind for row in s.exec(select(WebSession)).all())

        env = settings_env(settings)
        staff = _cli("sessions", "end-all", "--kind", "staff", env=env)
        assert staff.returncode == 0 and "ended 2 staff session(s)" in staff.stdout, staff.stderr
        assert kinds() == ["resident"]
        everyone = _cli("sessions", "end-all", env=env)
        assert everyone.returncode == 0 and "ended 1 staff and resident" in everyone.stdout, everyone.stderr
        assert kinds() == []
        wrong = _cli("sessions", "end-all", "--kind", "owners", env=env)
        assert wrong.returncode == 2 and "--kind must be" in wrong.stderr + wrong.stdout
    finally:
        engine.dispose()
