"""History: one insert entry per run of ids of a bulk write (``last_feature_id``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""
import sqlalchemy as sa

from geoapi.storage import schema

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLE = "history"
COLUMN = "last_feature_id"
INDEX = "ix_history_runs"


def upgrade() -> None:
    from alembic import op

    # 0001 creates the table from the current schema, so a new database has both already.
    inspector = sa.inspect(op.get_bind())
    if COLUMN not in {c["name"] for c in inspector.get_columns(TABLE)}:
        op.add_column(TABLE, sa.Column(COLUMN, sa.Integer, nullable=True))
    if INDEX not in {i["name"] for i in inspector.get_indexes(TABLE)}:
        next(i for i in schema.history.indexes if i.name == INDEX).create(op.get_bind())


def downgrade() -> None:
    from alembic import op

    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if COLUMN in {c["name"] for c in inspector.get_columns(TABLE)}:
        runs = bind.execute(sa.text(f"SELECT count(*) FROM {TABLE} WHERE {COLUMN} IS NOT NULL")).scalar()
        if runs:   # the code before 0004 reads one feature per entry: it would lose those inserts
            raise RuntimeError(f"cannot downgrade below 0004: {runs} history entries each record the insert "
                               "of a run of features, which the older code cannot read")
    if INDEX in {i["name"] for i in inspector.get_indexes(TABLE)}:
        op.drop_index(INDEX, table_name=TABLE)
    if COLUMN in {c["name"] for c in inspector.get_columns(TABLE)}:
        with op.batch_alter_table(TABLE) as batch:
            batch.drop_column(COLUMN)
