"""resumable owner uploads (tus 1.0): each upload's durable checkpoint

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 16:30:00

A tus upload's offset, the S3 parts it has, the short tail not yet in a part and the SHA-256 state
of the parts' bytes live in the database, so any API replica can take the next PATCH.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import custody.timeutil


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

Str = sqlmodel.sql.sqltypes.AutoString
When = custody.timeutil.UtcDateTime


def upgrade() -> None:
    op.create_table('tus_uploads',
    sa.Column('id', Str(length=36), nullable=False),
    sa.Column('length', sa.BigInteger(), nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=False),
    sa.Column('expected_sha256', Str(length=64), nullable=False),
    sa.Column('declared_type', Str(length=100), nullable=False),
    sa.Column('parts', sa.Text(), nullable=False),
    sa.Column('tail', sa.LargeBinary(), nullable=False),
    sa.Column('hash_state', sa.LargeBinary(), nullable=False),
    sa.Column('lease', Str(length=36), nullable=False),
    sa.Column('lease_until', When(timezone=True), nullable=True),
    sa.Column('expires_at', When(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['id'], ['uploads.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('tus_uploads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tus_uploads_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tus_uploads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tus_uploads_expires_at'))
    op.drop_table('tus_uploads')
