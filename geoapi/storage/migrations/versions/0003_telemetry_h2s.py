"""Telemetry: hydrogen sulphide reading (GAS_H2S, DOMAIN.md §10.1).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""
import sqlalchemy as sa

from geoapi.storage import schema

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLE = "telemetry"
COLUMNS = ("h2s_ppm",)


def upgrade() -> None:
    from alembic import op

    # 0002 creates the table from the current schema, so a new database has the column already.
    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(TABLE)}
    for name in COLUMNS:
        if name not in have:
            col = schema.metadata.tables[TABLE].c[name]
            op.add_column(TABLE, sa.Column(name, col.type, nullable=True))


def downgrade() -> None:
    from alembic import op

    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(TABLE)}
    with op.batch_alter_table(TABLE) as batch:
        for name in reversed(COLUMNS):
            if name in have:
                batch.drop_column(name)
