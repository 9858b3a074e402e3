"""api keys: salted hashes, scopes, revocation

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa
import flowdeck.server.models

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('secret_hash', sa.String(length=255), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created', flowdeck.server.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked', flowdeck.server.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys'))
    )
    op.create_index('ix_api_keys_active_name', 'api_keys', ['name'], unique=True,
                    sqlite_where=sa.text('revoked IS NULL'), postgresql_where=sa.text('revoked IS NULL'))


def downgrade() -> None:
    op.drop_index('ix_api_keys_active_name', table_name='api_keys')
    op.drop_table('api_keys')
