"""audit trail: the ledger entry table gains actor and outcome columns and the auditor's indexes

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 16:50:00

The auditor's console filters the ledger by event type, user, outcome and time (CJIS 5.4.1.1).
Those are copied beside each entry when it is appended; rows written before this migration get theirs
from the stored canonical entry (the hashed bytes, never changed). The ledger table is append-only
(migration 0002's triggers), so the backfill lifts the UPDATE guard for its own statement only, in
this migration's transaction, and puts it back.
"""
import json

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

Str = sqlmodel.sql.sqltypes.AutoString
BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table('ledger_entries', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('actor', Str(length=200), nullable=True))
        batch_op.add_column(sa.Column('outcome', Str(length=16), nullable=True))
        batch_op.create_index('ix_ledger_entries_type_idx', ['type', 'idx'], unique=False)
        batch_op.create_index('ix_ledger_entries_type_created_at', ['type', 'created_at'], unique=False)
        batch_op.create_index('ix_ledger_entries_actor_idx', ['actor', 'idx'], unique=False)
        batch_op.create_index('ix_ledger_entries_outcome_idx', ['outcome', 'idx'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_created_at'), ['created_at'], unique=False)
    _backfill()


def _backfill() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == 'postgresql'
    if postgres:
        op.execute('ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only')
    else:
        op.execute('DROP TRIGGER IF EXISTS ledger_entries_no_update')
    update = sa.text('UPDATE ledger_entries SET actor = :actor, outcome = :outcome WHERE idx = :idx')
    last = -1
    while True:
        rows = bind.execute(
            sa.text('SELECT idx, entry FROM ledger_entries WHERE idx > :last ORDER BY idx LIMIT :n'),
            {'last': last, 'n': BATCH},
        ).all()
        if not rows:
            break
        params = []
        for idx, entry in rows:
            obj = json.loads(entry)
            params.append({'idx': idx, 'actor': str(obj.get('actor', ''))[:200], 'outcome': obj.get('outcome')})
        bind.execute(update, params)
        last = rows[-1][0]
    if postgres:
        op.execute('ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_append_only')
    else:
        op.execute(
            "CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries "
            "BEGIN SELECT RAISE(ABORT, 'custody ledger table ledger_entries is append-only: UPDATE refused'); END"
        )


def downgrade() -> None:
    with op.batch_alter_table('ledger_entries', schema=None, recreate='never') as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entries_created_at'))
        batch_op.drop_index('ix_ledger_entries_outcome_idx')
        batch_op.drop_index('ix_ledger_entries_actor_idx')
        batch_op.drop_index('ix_ledger_entries_type_created_at')
        batch_op.drop_index('ix_ledger_entries_type_idx')
        batch_op.drop_column('outcome')
        batch_op.drop_column('actor')
