"""the working copy of each evidence file, and ffprobe's container facts of its master

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 16:45:00

The owner's file stays the master exhibit. The worker makes a browser-playable H.264/AAC MP4 under
its own key (custody/workcopy.py); its hash, size, type and state ("made" | "not_made", with why)
are kept here with the master's duration, codecs and the recorder's stated creation time.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import custody.timeutil


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

Str = sqlmodel.sql.sqltypes.AutoString
When = custody.timeutil.UtcDateTime

COLUMNS = (
    'working_copy_key', 'working_copy_sha256', 'working_copy_size', 'working_copy_content_type',
    'working_copy_state', 'working_copy_detail', 'duration_s', 'video_codec', 'audio_codec',
    'recorded_at',
)


def upgrade() -> None:
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('working_copy_key', Str(length=320), nullable=True))
        batch_op.add_column(sa.Column('working_copy_sha256', Str(length=64), nullable=True))
        batch_op.add_column(sa.Column('working_copy_size', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('working_copy_content_type', Str(length=100), nullable=True))
        batch_op.add_column(sa.Column('working_copy_state', Str(length=16), nullable=True))
        batch_op.add_column(
            sa.Column('working_copy_detail', Str(length=500), nullable=False, server_default='')
        )
        batch_op.add_column(sa.Column('duration_s', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('video_codec', Str(length=32), nullable=True))
        batch_op.add_column(sa.Column('audio_codec', Str(length=32), nullable=True))
        batch_op.add_column(sa.Column('recorded_at', When(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
