"""deploy/postgres-init.sql on a real, throwaway PostgreSQL cluster: the roles docker-compose.yml
relies on, and what each may do. The migration runs as `custody_owner`; the app role `custody`
reads and writes rows (the ledger included) and can create, drop or alter nothing.

Runs its own cluster (initdb on a free port, trust auth on a private socket folder): the roles are
cluster-wide, and the shared test server's global state is not ours to change.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from custody.db import create_db_engine, migrate
from custody.dbroles import grant_app_role
from custody.ledger.entries import CustodyEvent, EventType
from custody.ledger.note import Signer
from custody.ledger.store import Ledger
from devstack.procs import free_port

ROOT = Path(__file__).resolve().parents[2]


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def _as_postgres(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a server tool as the `postgres` user when we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, **kw)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{argv}: {done.stdout}{done.stderr}"
    return done  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, int]]:
    pg_bin = _pg_bin()
    if pg_bin is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        pytest.skip("no PostgreSQL server binaries (initdb) on this machine")
    # Not under pytest's tmp folder: that is private to root, and the server runs as `postgres`.
    base = Path(tempfile.mkdtemp(prefix="custody-pgroles-"))
    base.chmod(0o755)
    secrets = base / "secrets"
    secrets.mkdir()
    for name in ("db_owner_password", "db_app_password"):
        (secrets / name).write_text(f"pw-{name}\n")
    init = (ROOT / "deploy" / "postgres-init.sql").read_text().replace("/run/secrets/", f"{secrets}/")
    (base / "init.sql").write_text(init)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        for p in [secrets, *secrets.iterdir(), base / "init.sql"]:
            shutil.chown(p, "postgres")
    data, port = base / "data", free_port()
    _as_postgres([str(pg_bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"])
    _as_postgres([
        str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "start",
        "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1",
    ])  # fmt: skip
    try:
        _as_postgres(
            ["psql", "-h", str(base), "-p", str(port), "-U", "postgres", "-d", "postgres",
             "-v", "ON_ERROR_STOP=1", "-q", "-f", str(base / "init.sql")],
            env={**os.environ, "TEMPORAL_DB_PASSWORD": "pw-temporal"},
        )  # fmt: skip
        yield str(base), port
    finally:
        _as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(base, ignore_errors=True)


def _engine(cluster: tuple[str, int], role: str, db: str = "custody") -> sa.Engine:
    _, port = cluster
    return create_db_engine(f"postgresql://{role}@127.0.0.1:{port}/{db}")


def test_owner_migrates_app_writes_rows_and_nothing_else(cluster: tuple[str, int]) -> None:
    owner = _engine(cluster, "custody_owner")
    migrate(owner)
    grant_app_role(owner, "custody")  # what `custody migrate --app-role custody` does after migrating
    owner.dispose()

    app = _engine(cluster, "custody")
    try:
        ledger = Ledger(app, Signer.from_seed("roles.test/ledger", base64.b64encode(os.urandom(32)).decode()))
        ledger.append([("r-1", CustodyEvent(EventType.evidence_viewed, actor="u", agency="MPD"))])
        checkpoint = ledger.sign_checkpoint()
        assert checkpoint is not None and checkpoint.tree_size >= 1
        refused = {
            "CREATE TABLE intruder (x int)": "permission denied for schema public",
            "DROP TABLE ledger_entries": "must be owner",
            "ALTER TABLE ledger_entries DISABLE TRIGGER ALL": "must be owner",
            # Refused by privileges before the append-only trigger (migration 0002) is even reached.
            "UPDATE ledger_entries SET type = 'x'": "permission denied for table ledger_entries",
            "DELETE FROM ledger_checkpoints": "permission denied for table ledger_checkpoints",
            "UPDATE alembic_version SET version_num = 'x'": "permission denied for table alembic_version",
            "ALTER ROLE custody CREATEDB": "permission denied",
        }
        with app.connect() as conn:
            for statement, reason in refused.items():
                with pytest.raises(sa.exc.DBAPIError, match=reason), conn.begin():
                    conn.execute(sa.text(statement))
            attrs = conn.execute(
                sa.text("SELECT rolcreatedb, rolcreaterole, rolsuper FROM pg_roles WHERE rolname = 'custody'")
            ).one()
            assert tuple(attrs) == (False, False, False)
    finally:
        app.dispose()


def test_temporal_role_owns_only_its_databases(cluster: tuple[str, int]) -> None:
    temporal = _engine(cluster, "temporal", "temporal")
    try:
        with temporal.connect() as conn:
            owned = (
                conn.execute(
                    sa.text(
                        "SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
                        "WHERE r.rolname = 'temporal' ORDER BY 1"
                    )
                )
                .scalars()
                .all()
            )
            assert owned == ["temporal", "temporal_visibility"]
    finally:
        temporal.dispose()
    with pytest.raises(sa.exc.OperationalError, match="permission denied for database"):
        _engine(cluster, "temporal", "custody").connect().close()
