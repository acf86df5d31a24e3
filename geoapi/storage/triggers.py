"""Statement-level triggers with transition tables on layer tables (PostGIS): one call per
statement, not per row, so a bulk load is not slowed row by row. Used by the change-notify
triggers (tilesql), the tile cell counts (tilecells) and the row counts (rowcount)."""

from __future__ import annotations

import sqlalchemy as sa

TRIGGERS = (
    ("ins", "AFTER INSERT", "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"),
    ("upd", "AFTER UPDATE", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT"),
    ("del", "AFTER DELETE", "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT"),
    ("trunc", "AFTER TRUNCATE", "FOR EACH STATEMENT"),
)


def replace_triggers(conn: sa.Connection, table: str, prefix: str, call: str,
                     events: tuple[str, ...] = ("ins", "upd", "del", "trunc")) -> None:
    """(Re)create the triggers ``<prefix>_<event>`` on ``table`` executing ``call``
    (e.g. ``geoapi_count_rows('manholes')``), for the ``events`` named (suffixes of TRIGGERS)."""
    quoted = '"' + table.replace('"', '""') + '"'
    for suffix, event, clause in TRIGGERS:
        if suffix in events:
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {prefix}_{suffix} ON {quoted}")
            conn.exec_driver_sql(f"CREATE TRIGGER {prefix}_{suffix} {event} ON {quoted} {clause} "
                                 f"EXECUTE FUNCTION {call}")
