"""alerts remember whether their workflow started; uploads are recorded while they stream

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 10:20:00

An alert's rows are committed before its workflow starts, so `incidents.dispatched_at` is the
outbox: null until the workflow service has the incident's workflow, and the worker's relay starts
any alert left null (the API found the workflow service down, or died between the two). Alerts made
before this revision had their workflows started by the API that made them.

`uploads` holds an owner's file from the moment its S3 multipart upload exists until it ends as
evidence (with its ledger entry) or as nothing kept: no object completes in the store without a row
naming it, and the sweeper finishes or aborts uploads whose API died.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

from custody.timeutil import UtcDateTime


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

Str = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dispatched_at', UtcDateTime(), nullable=True))
    op.execute("UPDATE incidents SET dispatched_at = created_at")
    op.create_table(
        'uploads',
        sa.Column('id', Str(length=36), primary_key=True),
        sa.Column('request_id', Str(length=36), sa.ForeignKey('footage_requests.id'), nullable=False),
        sa.Column('filename', Str(length=255), nullable=False),
        sa.Column('object_key', Str(length=300), nullable=False),
        sa.Column('upload_id', Str(length=300), nullable=False),
        sa.Column('content_type', Str(length=100), nullable=False),
        sa.Column('actor', Str(length=64), nullable=False),
        sa.Column('state', Str(length=16), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False, server_default='0'),
        sa.Column('sha256', Str(length=64), nullable=False, server_default=''),
        sa.Column('version_id', Str(length=200), nullable=True),
        sa.Column('started_at', UtcDateTime(), nullable=False),
        sa.Column('heartbeat_at', UtcDateTime(), nullable=False),
        sa.Column('detail', Str(length=500), nullable=False, server_default=''),
    )
    op.create_index('ix_uploads_request_id', 'uploads', ['request_id'])
    op.create_index('ix_uploads_state', 'uploads', ['state'])
    op.create_index('ix_incidents_dispatched_at', 'incidents', ['dispatched_at'])


def downgrade() -> None:
    op.drop_index('ix_incidents_dispatched_at', 'incidents')
    op.drop_index('ix_uploads_state', 'uploads')
    op.drop_index('ix_uploads_request_id', 'uploads')
    op.drop_table('uploads')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_column('dispatched_at')
