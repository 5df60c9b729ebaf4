"""rate-limited actions are counted per subject in the database

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 10:10:00

Generating a custody report or bundle appends to the ledger; a user may do it only so often per minute
(CUSTODY_REPORT_RATE_PER_MIN). The uses are counted in the database so that every API process sees
the same count.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import custody.timeutil


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

Str = sqlmodel.sql.sqltypes.AutoString
When = custody.timeutil.UtcDateTime


def upgrade() -> None:
    op.create_table('rate_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('action', Str(length=32), nullable=False),
    sa.Column('subject', Str(length=64), nullable=False),
    sa.Column('at', When(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('rate_events', schema=None) as batch_op:
        batch_op.create_index('ix_rate_events_action_subject_at', ['action', 'subject', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rate_events', schema=None) as batch_op:
        batch_op.drop_index('ix_rate_events_action_subject_at')
    op.drop_table('rate_events')
