"""Bulk rows into PostgreSQL with COPY: the import and demo path on PostGIS.

A multi-row INSERT of thousands of rows spends most of its time in the driver building and
parsing the statement; COPY streams rows in PostgreSQL's text format instead (about the way
ogr2ogr loads). Geometry goes in as hex EWKB, which the geometry type's input function reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa


def reserve_ids(conn: sa.Connection, table: sa.Table, n: int) -> list[int]:
    """Take ``n`` ids from the table's sequence (COPY cannot return the ids it assigns)."""
    seq = conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name}).scalar_one()
    return conn.execute(sa.text("SELECT nextval(:s) FROM generate_series(1, :n)"),
                        {"s": seq, "n": n}).scalars().all()


def copy_rows(conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """COPY ``rows`` (tuples in ``columns`` order, JSON already as text) in the open transaction."""
    cols = ", ".join(f'"{c}"' for c in columns)
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({cols}) FROM STDIN') as cp:
        for row in rows:
            cp.write_row(row)
