"""residents sign up themselves, cases are shared, web console sessions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 09:20:00

Owners and cameras registered before this revision were registered by staff: they count as confirmed
and approved from the moment they were created.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import custody.timeutil


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

Str = sqlmodel.sql.sqltypes.AutoString
When = custody.timeutil.UtcDateTime


def upgrade() -> None:
    with op.batch_alter_table('owners', schema=None) as batch_op:
        batch_op.add_column(sa.Column('business_name', Str(length=200), nullable=True))
        batch_op.add_column(sa.Column('terms_version', Str(length=32), nullable=False, server_default='staff-recorded'))
        batch_op.add_column(sa.Column('confirmed_at', When(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('withdrawn_at', When(timezone=True), nullable=True))
    op.execute("UPDATE owners SET confirmed_at = created_at")

    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.add_column(sa.Column('view_description', Str(length=500), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('clock_offset_s', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('approved_at', When(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('approved_by', Str(length=36), nullable=True))
    op.execute("UPDATE cameras SET approved_at = created_at")

    op.create_table('owner_tokens',
    sa.Column('token_hash', Str(length=64), nullable=False),
    sa.Column('owner_id', Str(length=36), nullable=False),
    sa.Column('purpose', Str(length=16), nullable=False),
    sa.Column('created_at', When(timezone=True), nullable=False),
    sa.Column('expires_at', When(timezone=True), nullable=False),
    sa.Column('used_at', When(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['owner_id'], ['owners.id'], ),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('owner_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_owner_tokens_owner_id'), ['owner_id'], unique=False)

    op.create_table('signup_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', Str(length=254), nullable=False),
    sa.Column('client', Str(length=64), nullable=False),
    sa.Column('at', When(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('signup_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_signup_attempts_email_at', ['email', 'at'], unique=False)
        batch_op.create_index('ix_signup_attempts_client_at', ['client', 'at'], unique=False)

    op.create_table('case_shares',
    sa.Column('id', Str(length=36), nullable=False),
    sa.Column('case_id', Str(length=36), nullable=False),
    sa.Column('agency', Str(length=32), nullable=False),
    sa.Column('user_id', Str(length=36), nullable=True),
    sa.Column('reason', Str(length=500), nullable=False),
    sa.Column('created_by', Str(length=36), nullable=False),
    sa.Column('created_at', When(timezone=True), nullable=False),
    sa.Column('expires_at', When(timezone=True), nullable=False),
    sa.Column('revoked_at', When(timezone=True), nullable=True),
    sa.Column('revoked_by', Str(length=36), nullable=True),
    sa.ForeignKeyConstraint(['agency'], ['agencies.code'], ),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('case_shares', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_shares_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_shares_agency'), ['agency'], unique=False)

    op.create_table('web_sessions',
    sa.Column('token_hash', Str(length=64), nullable=False),
    sa.Column('kind', Str(length=16), nullable=False),
    sa.Column('subject_id', Str(length=36), nullable=False),
    sa.Column('csrf', Str(length=64), nullable=False),
    sa.Column('created_at', When(timezone=True), nullable=False),
    sa.Column('expires_at', When(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_sessions_subject_id'), ['subject_id'], unique=False)


def downgrade() -> None:
    op.drop_table('web_sessions')
    op.drop_table('case_shares')
    op.drop_table('signup_attempts')
    op.drop_table('owner_tokens')
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        for col in ('approved_by', 'approved_at', 'clock_offset_s', 'view_description'):
            batch_op.drop_column(col)
    with op.batch_alter_table('owners', schema=None) as batch_op:
        for col in ('withdrawn_at', 'confirmed_at', 'terms_version', 'business_name'):
            batch_op.drop_column(col)
