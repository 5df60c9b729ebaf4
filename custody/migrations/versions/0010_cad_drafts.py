"""a CAD incident's own facts on its case, so the console can offer the alert it suggests

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 16:10:00

Under CUSTODY_INCIDENT_POLICY=draft a case opened by `POST /incidents` waits for an investigator to
confirm its alert. The console pre-fills that alert from the incident's type, place and time, kept
here as columns rather than parsed back out of the case's description.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import custody.timeutil


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

Str = sqlmodel.sql.sqltypes.AutoString
When = custody.timeutil.UtcDateTime


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cad_type', Str(length=100), nullable=True))
        batch_op.add_column(sa.Column('cad_lat', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('cad_lon', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('cad_occurred_at', When(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('cad_integration_id', Str(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        for name in ('cad_integration_id', 'cad_occurred_at', 'cad_lon', 'cad_lat', 'cad_type'):
            batch_op.drop_column(name)
