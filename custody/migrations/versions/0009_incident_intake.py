"""incidents from a crime center's CAD system: integrations, seen signatures, cases' CAD numbers

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 14:55:00

`POST /incidents` is signed with an integration's secret (HMAC); signatures seen in the last 300 s
are kept so a replay is refused by every API replica; a case opened from an incident carries its
CAD number, unique per agency, so the same incident sent twice finds the same case.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import custody.timeutil


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

Str = sqlmodel.sql.sqltypes.AutoString
When = custody.timeutil.UtcDateTime


def upgrade() -> None:
    op.create_table('integrations',
    sa.Column('id', Str(length=36), nullable=False),
    sa.Column('name', Str(length=200), nullable=False),
    sa.Column('agency', Str(length=32), nullable=False),
    sa.Column('secret', Str(length=128), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', When(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency'], ['agencies.code'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('integrations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_integrations_agency'), ['agency'], unique=False)
    op.create_table('incident_signatures',
    sa.Column('signature', Str(length=64), nullable=False),
    sa.Column('integration_id', Str(length=36), nullable=False),
    sa.Column('seen_at', When(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('signature')
    )
    with op.batch_alter_table('incident_signatures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_signatures_seen_at'), ['seen_at'], unique=False)
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cad_number', Str(length=64), nullable=True))
        batch_op.create_index('ux_cases_agency_cad_number', ['agency', 'cad_number'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ux_cases_agency_cad_number')
        batch_op.drop_column('cad_number')
    with op.batch_alter_table('incident_signatures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_signatures_seen_at'))
    op.drop_table('incident_signatures')
    with op.batch_alter_table('integrations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_integrations_agency'))
    op.drop_table('integrations')
