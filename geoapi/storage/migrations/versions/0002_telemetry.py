"""Telemetry time series, alarms and their lifecycle events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""
from geoapi.storage import schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("telemetry", "alarms", "alarm_events")


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
