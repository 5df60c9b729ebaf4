"""retention classes and legal hold: cases' category, evidence's retain-until, hold and disposition

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 16:20:00

A case's category picks its evidence's retention class; each evidence row keeps the COMPLIANCE
retain-until set on its object version, whether a legal hold is on it, and its disposition
(pending, approved; the row's status becomes `disposed` when the version is deleted). An upload
keeps the retain-until its multipart upload was created with, so whoever records it knows it.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import custody.timeutil


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

Str = sqlmodel.sql.sqltypes.AutoString
When = custody.timeutil.UtcDateTime


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('category', Str(length=64), nullable=True))
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retain_until', When(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('retention_days', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('legal_hold', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('disposition', Str(length=16), nullable=True))
        batch_op.add_column(sa.Column('disposition_by', Str(length=36), nullable=True))
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retain_until', When(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('retention_days', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.drop_column('retention_days')
        batch_op.drop_column('retain_until')
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_column('disposition_by')
        batch_op.drop_column('disposition')
        batch_op.drop_column('legal_hold')
        batch_op.drop_column('retention_days')
        batch_op.drop_column('retain_until')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('category')
