"""consent basis: each evidence row names what allows custody to hold it, and that ledger entry

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28 17:00:00

`basis_type` is `consent` (the request's `consent_given` entry) or `integration_agreement` (the
integrated camera's `camera_approved` entry); `basis_ledger_index` is that entry's index. Files an
owner sent before this revision get their request's `consent_given` entry (found in the ledger by
type and request); pulled files of that time keep no basis (no approval entry was written then).
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

Str = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('basis_type', Str(length=32), nullable=True))
        batch_op.add_column(sa.Column('basis_ledger_index', sa.BigInteger(), nullable=True))
    consent = (
        "(SELECT MIN(l.idx) FROM ledger_entries l WHERE l.type = 'consent_given' "
        "AND l.request_id = evidence.request_id)"
    )
    op.execute(
        f"UPDATE evidence SET basis_type = 'consent', basis_ledger_index = {consent} "
        f"WHERE basis_type IS NULL AND {consent} IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_column('basis_ledger_index')
        batch_op.drop_column('basis_type')
