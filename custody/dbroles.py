"""Least privilege in PostgreSQL: the role the API and workers log in as may read and write the
working tables, but may only read and append the ledger.

Why in the database too: the ledger's hashes show an edit after the fact; a role that cannot UPDATE
or DELETE ledger rows stops one from happening through custody's own credentials at all. Schema
changes (`custody migrate`) run as the owning role; the application role owns nothing, so it cannot
ALTER, DROP or TRUNCATE either.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from custody.errors import ConfigurationError

#: Tables whose rows are never changed once written (append-only).
APPEND_ONLY = ("ledger_entries", "ledger_nodes", "ledger_checkpoints")
_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def grant_app_role(engine: Engine, role: str) -> list[str]:
    """Give `role` what the application needs on every table of the current schema, and no more.
    Idempotent: run after each migration (new tables need their grants). Returns the statements."""
    if engine.dialect.name != "postgresql":
        raise ConfigurationError("Database roles are a PostgreSQL feature; SQLite has no roles to grant.")
    if not _ROLE.match(role):
        raise ConfigurationError(f"{role!r} is not a plain PostgreSQL role name (lowercase, digits, _).")
    with engine.begin() as conn:
        tables = [
            str(name)
            for name in conn.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            ).scalars()
        ]
        statements = [f'GRANT USAGE ON SCHEMA "{_schema(conn)}" TO "{role}"']
        for table in sorted(tables):
            if table == "alembic_version":  # read to check the schema is current, never written
                statements.append(f'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON "{table}" FROM "{role}"')
                statements.append(f'GRANT SELECT ON "{table}" TO "{role}"')
            elif table in APPEND_ONLY:
                statements.append(f'REVOKE UPDATE, DELETE, TRUNCATE ON "{table}" FROM "{role}"')
                statements.append(f'GRANT SELECT, INSERT ON "{table}" TO "{role}"')
            else:
                statements.append(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO "{role}"')
        statements.append(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{_schema(conn)}" TO "{role}"')
        for statement in statements:
            conn.execute(sa.text(statement))
    return statements


def _schema(conn: sa.Connection) -> str:
    return str(conn.execute(sa.text("SELECT current_schema()")).scalar_one())
