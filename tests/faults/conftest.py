"""The fault suite's stack: its own Temporal, SeaweedFS and SMTP servers (so pausing or killing them
disturbs no other test), the API and the worker as real processes (so SIGKILL is a real crash), and
the helpers that inject faults and check what survived.

Faults are injected with signals: SIGSTOP/SIGCONT pause a server (a stall: connections are accepted
by the kernel but nothing answers), SIGKILL kills a process. Stages are waited for by reading the
database or S3 (an upload row `streaming`, a consent token issued), never guessed by time.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from minio import Minio
from sqlalchemy.engine import Engine

from custody.db import create_db_engine, migrate
from custody.devsecrets import ensure_dev_secrets
from custody.ledger.service import ledger_for
from custody.ledger.verify import verify_export
from custody.settings import Settings
from devstack.procs import Child, free_port
from devstack.servers import S3Identity
from devstack.stack import EmbeddedServers
from storage.evidence import open_multiparts
from storage.s3 import make_client
from tests.conftest import _create_pg_database, _drop_pg_database
from tests.flow import link_in, messages_to, wait_for
from tests.helpers import make_user, settings_env, unique_email

#: Every fault injected in this session, by kind (printed at the end: the issue's figures).
INJECTED: dict[str, int] = {}


def injected(kind: str) -> None:
    INJECTED[kind] = INJECTED.get(kind, 0) + 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if INJECTED:
        total = sum(INJECTED.values())
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(INJECTED.items()))
        terminalreporter.write_line(f"fault suite: {total} faults injected ({kinds})")


class Proc:
    """A Python process of ours (API or worker) that can be killed and started again."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path, ready: str) -> None:
        self.name, self.argv, self.env, self.log, self.ready = name, argv, env, log, ready
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, check: Any = None) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        marker = f"--- start {self.starts} ---"
        with self.log.open("a") as f:
            f.write(f"\n{marker}\n")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        if check is not None:
            wait_for(f"{self.name} ready", check, timeout=60, interval=0.2)
        else:
            wait_for(
                f"{self.name} ready",
                lambda: self.ready in self.log.read_text(errors="replace").split(marker)[-1],
                timeout=60,
                interval=0.2,
            )

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        injected(f"SIGKILL {self.name}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class FaultStack:
    home: Path
    settings: Settings
    servers: dict[str, Child]
    api_port: int
    engine: Engine
    s3: Minio
    api: Proc | None = None
    worker: Proc | None = None
    _headers: dict[str, str] = field(default_factory=dict)

    # --- processes ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start_api(self, **overrides: object) -> None:
        """(Re)start the API process, optionally with other settings (a smaller pool, a full disk)."""
        if self.api is not None:
            self.api.stop()
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        env = settings_env(settings)
        for name, value in overrides.items():
            env[f"CUSTODY_{name.upper()}"] = str(value)
        argv = [sys.executable, "-m", "api.serve", "--port", str(self.api_port)]
        self.api = Proc("api", argv, env, self.home / "logs" / "api.log", "")
        self.api.start(check=self._api_answers)

    def _api_answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/docs", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start_worker(self) -> None:
        if self.worker is None:
            env = settings_env(self.settings)
            self.worker = Proc(
                "worker",
                [sys.executable, "-m", "worker"],
                env,
                self.home / "logs" / "worker.log",
                "worker ready",
            )
        self.worker.start()

    # --- servers -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def paused(self, name: str) -> Iterator[None]:
        """SIGSTOP a server for the duration of the block (its whole process group)."""
        child = self.servers[name]
        os.killpg(child.pid, signal.SIGSTOP)
        injected(f"pause {name}")
        try:
            yield
        finally:
            os.killpg(child.pid, signal.SIGCONT)

    @contextlib.contextmanager
    def database_locked(self) -> Iterator[None]:
        """Hold the database's write lock (SQLite) or an exclusive lock on `cases` (PostgreSQL) for the
        block: writers wait, as they would behind a stuck session."""
        engine = create_db_engine(self.settings.db_url, pool_size=1)
        conn = engine.connect()
        try:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.begin()
                conn.exec_driver_sql("LOCK TABLE cases IN ACCESS EXCLUSIVE MODE")
            injected("lock database")
            yield
        finally:
            conn.rollback()
            conn.close()
            engine.dispose()

    # --- the API as a user -------------------------------------------------------------------

    def issued_tokens(self) -> list[str]:
        """Every bearer token and consent link token handed out in this stack (to look for in logs)."""
        links = []
        for path in (self.home / "mail").rglob("*"):
            if path.is_file():
                links += re.findall(r"/consent/([A-Za-z0-9_-]{20,})", path.read_text(errors="replace"))
        return [f"Bearer {t}" for t in self._headers.values()] + [f"link {t}" for t in links]

    def client(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def staff(self, role: str = "investigator") -> dict[str, str]:
        if role not in self._headers:
            username, password = make_user(self.engine, role)
            with self.client() as c:
                r = c.post("/auth/token", data={"username": username, "password": password})
                assert r.status_code == 200, r.text
                self._headers[role] = r.json()["access_token"]
        return {"Authorization": f"Bearer {self._headers[role]}"}

    def camera(self, c: httpx.Client, lat: float, lon: float) -> tuple[str, str]:
        """A registered camera with a fresh owner; returns (camera id, owner email)."""
        h = self.staff()
        email = unique_email()
        owner = c.post("/owners", json={"name": "Fault Owner", "email": email}, headers=h)
        assert owner.status_code == 201, owner.text
        body = {
            "owner_id": owner.json()["id"],
            "label": "Side gate",
            "lat": lat,
            "lon": lon,
            "kind": "registered",
        }
        cam = c.post("/cameras", json=body, headers=h)
        assert cam.status_code == 201, cam.text
        return cam.json()["id"], email

    def alert(
        self, c: httpx.Client, case_id: str, lat: float, lon: float, end: datetime | None = None
    ) -> httpx.Response:
        end = end or datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
        body = {
            "lat": lat,
            "lon": lon,
            "radius_m": 50,
            "window_start": (end - timedelta(minutes=20)).isoformat(),
            "window_end": end.isoformat(),
            "description": "fault suite",
        }
        return c.post(f"/cases/{case_id}/alerts", json=body, headers=self.staff())

    def case(self, c: httpx.Client) -> str:
        r = c.post("/cases", json={"title": f"Fault case {uuid.uuid4().hex[:6]}"}, headers=self.staff())
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def status(self, c: httpx.Client, request_id: str) -> str:
        r = c.get(f"/requests/{request_id}", headers=self.staff())
        assert r.status_code == 200, r.text
        return str(r.json()["status"])

    def token_for(self, email: str, n: int = 1) -> str:
        msgs = wait_for(
            f"{n} notice(s) to {email}",
            lambda: (
                len(messages_to(self.home / "mail", email)) >= n and messages_to(self.home / "mail", email)
            ),
        )
        return link_in(msgs[-1]).rsplit("/consent/", 1)[1]

    def consented_request(self, c: httpx.Client, lat: float) -> tuple[str, str, str]:
        """A request whose owner consented: (case id, request id, consent token)."""
        _, email = self.camera(c, lat, -77.3)
        case_id = self.case(c)
        r = self.alert(c, case_id, lat, -77.3)
        assert r.status_code == 202, r.text
        request_id = r.json()["requests"][0]["id"]
        token = self.token_for(email)
        d = c.post(f"/consent/{token}/decision", json={"decision": "consent"})
        assert d.status_code == 200, d.text
        return case_id, request_id, token

    # --- what survived -----------------------------------------------------------------------

    def scalar(self, sql: str, **params: object) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def upload_state(self, evidence_id: str | None = None, request_id: str | None = None) -> str | None:
        if evidence_id is not None:
            return self.scalar("SELECT state FROM uploads WHERE id = :i", i=evidence_id)  # type: ignore[no-any-return]
        return self.scalar(  # type: ignore[no-any-return]
            "SELECT state FROM uploads WHERE request_id = :r ORDER BY started_at DESC LIMIT 1", r=request_id
        )

    def orphans(self) -> list[str]:
        """Objects in the evidence bucket that no evidence row names, and open multipart uploads that
        no live upload row names: both must be empty once the sweeper has run."""
        with self.engine.connect() as conn:
            keys = {r[0] for r in conn.execute(sa.text("SELECT object_key FROM evidence"))}
            keys |= {  # working copies (activities/workcopy.py) are named by their evidence row too
                r[0]
                for r in conn.execute(
                    sa.text("SELECT working_copy_key FROM evidence WHERE working_copy_key IS NOT NULL")
                )
            }
            live = {
                r[0]
                for r in conn.execute(
                    sa.text("SELECT upload_id FROM uploads WHERE state IN ('streaming', 'completing')")
                )
            }
        found = [
            f"object {o.object_name}"
            for o in self.s3.list_objects(self.settings.s3_bucket, prefix="cases/", recursive=True)
            if o.object_name not in keys
        ]
        found += [
            f"multipart {m.key}"
            for m in open_multiparts(self.s3, bucket=self.settings.s3_bucket)
            if m.upload_id not in live
        ]
        return found

    def verify_ledger(self, tmp: Path) -> int:
        """Export the ledger and verify it offline; every idempotency key appears once. Returns its size."""
        ledger = ledger_for(self.settings, self.engine)
        ledger.sign_checkpoint()
        folder = tmp / f"export-{uuid.uuid4().hex[:6]}"
        ledger.export(folder)
        report = verify_export(folder, ledger.signer.verifier)
        dupes = self.scalar(
            "SELECT count(*) FROM (SELECT idempotency_key FROM ledger_entries "
            "GROUP BY idempotency_key HAVING count(*) > 1) d"
        )
        assert dupes == 0, "an idempotency key was appended twice"
        return int(report.tree_size)


@pytest.fixture(scope="module")
def faults(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    """A stack of its own, on a database of its own (of `db_url`'s engine): its ledger is signed
    with its own key and its faults must not reach other tests' data."""
    home = tmp_path_factory.mktemp("faults")
    pg_name: str | None = None
    if db_url.startswith("sqlite"):
        db_url = f"sqlite:///{home / 'faults.db'}"
    else:
        pg_name, db_url = _create_pg_database()
    secrets = ensure_dev_secrets(home)
    ports = {"api": free_port()}
    embedded = EmbeddedServers(home, S3Identity(secrets["s3_access_key"], secrets["s3_secret_key"]))
    servers = embedded.children
    stack: FaultStack | None = None
    try:
        embedded.start()
        ports.update(temporal=embedded.temporal_port, s3=embedded.s3_port, smtp=embedded.smtp_port)
        settings = Settings(
            mode="test",
            home=home,
            database_url=db_url,
            api_port=ports["api"],
            public_url=f"http://127.0.0.1:{ports['api']}",
            temporal_port=ports["temporal"],
            s3_port=ports["s3"],
            smtp_port=ports["smtp"],
            s3_bucket="evidence",
            task_queue=f"faults-{uuid.uuid4().hex[:8]}",
            demo_users=False,
            jwt_key=secrets["jwt_key"],
            s3_access_key=secrets["s3_access_key"],
            s3_secret_key=secrets["s3_secret_key"],
            ledger_signing_key=secrets["ledger_signing_key"],
            report_signing_cert=secrets["report_signing_cert"],
            report_signing_key=secrets["report_signing_key"],
            consent_ttl_s=600,
            reminders_s=[3600],
            activity_heartbeat_s=2,
            ledger_checkpoint_interval_s=2,
            # Bounded waits, shrunk so each fault shows within seconds.
            temporal_rpc_timeout_s=2,
            temporal_update_timeout_s=4,
            relay_interval_s=0.5,
            upload_heartbeat_s=0.5,
            upload_stale_s=4,
            smtp_timeout_s=2,
            s3_timeout_s=2,
            db_pool_timeout_s=2,
            db_lock_timeout_s=1.5,
        )
        s3 = make_client(settings)
        engine = create_db_engine(settings.db_url)
        migrate(engine)
        stack = FaultStack(home, settings, servers, ports["api"], engine, s3)
        stack.start_api()
        stack.start_worker()
        yield stack
    finally:
        if stack is not None:
            for proc in (stack.api, stack.worker):
                if proc is not None:
                    proc.stop()
            stack.engine.dispose()
        for child in servers.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGCONT)
            child.stop()
        if pg_name is not None:
            _drop_pg_database(pg_name)
