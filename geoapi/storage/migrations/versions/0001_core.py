"""Core tables: history, API keys, 部件标识码 serials, import batches.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""
from geoapi.storage import schema

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = ("history", "api_keys", "code_serials", "import_batches")


def upgrade() -> None:
    from alembic import op

    bind = op.get_bind()
    for name in TABLES:
        schema.metadata.tables[name].create(bind, checkfirst=True)


def downgrade() -> None:
    from alembic import op

    bind = op.get_bind()
    for name in reversed(TABLES):
        schema.metadata.tables[name].drop(bind, checkfirst=True)
