"""owners and cameras record the agency that registered them

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 10:10:00

The registry is scoped per agency: an agency changes only the cameras it registered, and only its
staff see the contact details of the owners it registered. Existing rows take the agency of the
staff user who created them (an owner's `created_by`; a staff-registered camera's `approved_by`,
who registered it, else its owner's agency);
self-registered owners and their cameras belong to the program's home agency (MPD).
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

Str = sqlmodel.sql.sqltypes.AutoString
HOME_AGENCY = 'MPD'  # custody.agencies.HOME_AGENCY when this revision was written


def upgrade() -> None:
    # Plain ADD COLUMN, never a table rebuild: SQLite (foreign keys on) cannot drop and recreate
    # `owners` while cameras refer to it. Hence no foreign key either (SQLite cannot add one); the
    # value is always a user's agency. The server default names the home agency for rows written by
    # code older than this revision.
    op.add_column('owners', sa.Column('agency', Str(length=32), nullable=False, server_default=HOME_AGENCY))
    op.add_column('cameras', sa.Column('agency', Str(length=32), nullable=False, server_default=HOME_AGENCY))
    op.execute(
        "UPDATE owners SET agency = (SELECT users.agency FROM users WHERE users.id = owners.created_by) "
        "WHERE created_by IS NOT NULL AND EXISTS (SELECT 1 FROM users WHERE users.id = owners.created_by)"
    )
    op.execute(
        "UPDATE cameras SET agency = CASE "
        "WHEN (SELECT owners.created_by FROM owners WHERE owners.id = cameras.owner_id) IS NULL "
        f"THEN '{HOME_AGENCY}' ELSE COALESCE("
        "(SELECT users.agency FROM users WHERE users.id = cameras.approved_by), "
        "(SELECT owners.agency FROM owners WHERE owners.id = cameras.owner_id), "
        f"'{HOME_AGENCY}') END"
    )
    op.create_index(op.f('ix_owners_agency'), 'owners', ['agency'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_owners_agency'), table_name='owners')
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.drop_column('agency')
    with op.batch_alter_table('owners', schema=None) as batch_op:
        batch_op.drop_column('agency')
