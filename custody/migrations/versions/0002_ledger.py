"""ledger

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 06:38:58.855926
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import custody.timeutil


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ledger_checkpoints',
    sa.Column('tree_size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('root', sa.LargeBinary(length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', custody.timeutil.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('tree_size')
    )
    op.create_table('ledger_entries',
    sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('entry', sa.Text(), nullable=False),
    sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('border', sa.LargeBinary(), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('case_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('request_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('evidence_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('created_at', custody.timeutil.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('idx'),
    sa.UniqueConstraint('idempotency_key')
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entries_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_evidence_id'), ['evidence_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_request_id'), ['request_id'], unique=False)

    op.create_table('ledger_nodes',
    sa.Column('level', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('level', 'idx')
    )
    _append_only()


LEDGER_TABLES = ("ledger_entries", "ledger_nodes", "ledger_checkpoints")


def _append_only() -> None:
    """Nothing in the ledger is ever edited: the database itself refuses UPDATE, DELETE and TRUNCATE."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE OR REPLACE FUNCTION custody_ledger_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'custody ledger table % is append-only: % refused', TG_TABLE_NAME, TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        for table in LEDGER_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION custody_ledger_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION custody_ledger_append_only()"
            )
    else:
        for table in LEDGER_TABLES:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'custody ledger table {table} is append-only: {verb} refused'); END"
                )


def downgrade() -> None:
    op.drop_table('ledger_nodes')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entries_request_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_entries_evidence_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_entries_case_id'))

    op.drop_table('ledger_entries')
    op.drop_table('ledger_checkpoints')
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS custody_ledger_append_only()")
