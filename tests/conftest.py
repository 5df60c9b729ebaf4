"""Fixtures: the real servers (Temporal, SeaweedFS, SMTP) started once per test session on free ports,
and databases on both SQLite and PostgreSQL (each test session in its own PostgreSQL database)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from custody.devsecrets import ensure_dev_secrets
from custody.settings import Settings
from devstack.servers import S3Identity
from devstack.stack import EmbeddedServers

PG_ADMIN_URL = os.environ.get("CUSTODY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass
class Stack:
    home: Path
    temporal_port: int
    s3_port: int
    smtp_port: int
    maildir: Path
    secrets: dict[str, str]
    servers: EmbeddedServers

    def restart_temporal(self) -> None:
        """Stop the Temporal dev server and start it again on the same port and database file."""
        self.servers.restart_temporal()

    def settings(self, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "mode": "test",
            "home": self.home,
            "temporal_port": self.temporal_port,
            "s3_port": self.s3_port,
            "smtp_port": self.smtp_port,
            "s3_bucket": "evidence",
            "jwt_key": self.secrets["jwt_key"],
            "s3_access_key": self.secrets["s3_access_key"],
            "s3_secret_key": self.secrets["s3_secret_key"],
            "ledger_signing_key": self.secrets["ledger_signing_key"],
            "report_signing_cert": self.secrets["report_signing_cert"],
            "report_signing_key": self.secrets["report_signing_key"],
            "demo_users": False,
            # Test recorders listen on this machine; tests of the default (none allowed) override it.
            "pull_allowed_networks": "127.0.0.0/8",
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Real Temporal (headless), SeaweedFS and SMTP servers, started as `make run` starts them."""
    home = tmp_path_factory.mktemp("stack")
    secrets = ensure_dev_secrets(home)
    servers = EmbeddedServers(home, S3Identity(secrets["s3_access_key"], secrets["s3_secret_key"])).start()
    try:
        st = Stack(
            home, servers.temporal_port, servers.s3_port, servers.smtp_port, servers.maildir, secrets, servers
        )
        migrated(st.settings().db_url)  # the default database (stack.settings() without database_url)
        yield st
    finally:
        servers.stop()


def migrated(url: str) -> str:
    """Bring the database at `url` to head and return the URL. Outside dev mode the API and the
    worker refuse an unmigrated database (only `custody migrate` changes a schema), so every test
    that starts them on a database of its own migrates it first, as a deployment would."""
    from custody.db import create_db_engine, migrate

    engine = create_db_engine(url, pool_size=1)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return url


def _create_pg_database() -> tuple[str, str]:
    name = f"custody_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    return name, url


def _drop_pg_database(name: str) -> None:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database for this test session, migrated to head (as `custody migrate` would), on each
    of the two supported engines."""
    if request.param == "sqlite":
        yield migrated(f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'custody.db'}")
        return
    name, url = _create_pg_database()
    try:
        yield migrated(url)
    finally:
        _drop_pg_database(name)


@pytest.fixture(scope="session")
def settings(stack: Stack, db_url: str) -> Settings:
    return stack.settings(database_url=db_url)


@pytest.fixture(scope="session")
def api(settings: Settings) -> Iterator[TestClient]:
    """The real API application on the session's (migrated) database."""
    from api.app import create_app

    with TestClient(create_app(settings)) as client:
        yield client
