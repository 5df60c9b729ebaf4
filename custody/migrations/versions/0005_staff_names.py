"""staff users have a full name and a title

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 07:30:00

People read names, not usernames or ids: the console and the custody report show staff as
"full name (role, agency)", and the report's certification names its custodian by name and title.
Users created before this revision keep an empty name until an admin sets one; they are shown by
their username meanwhile.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

Str = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('full_name', Str(length=200), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('title', Str(length=100), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('title')
        batch_op.drop_column('full_name')
