"""Bulk rows into PostgreSQL with COPY: the import and demo path on PostGIS.

A multi-row INSERT of thousands of rows spends most of its time in the driver building and
parsing the statement; COPY streams rows in PostgreSQL's text format instead (about the way
ogr2ogr loads). Geometry goes in as hex EWKB, which the geometry type's input function reads.

The text is built a column at a time (one list comprehension per column, most columns being
all NULL or a handful of repeated values) and sent as one buffer per chunk: adapting each
value of each row through the driver's ``write_row`` cost more than the rest of the import.
"""

from __future__ import annotations

import datetime as dt
import struct
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa

NULL = "\\N"
_SPECIAL = ("\\", "\t", "\n", "\r")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def reserve_ids(conn: sa.Connection, table: sa.Table, n: int) -> list[int]:
    """Take ``n`` ids from the table's sequence (COPY cannot return the ids it assigns)."""
    seq = conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name}).scalar_one()
    # one array value, not n result rows: fetching 20,000 rows cost more than taking the ids
    ids = conn.execute(sa.text("SELECT array_agg(nextval(:s)) FROM generate_series(1, :n)"),
                       {"s": seq, "n": n}).scalar_one()
    return list(ids or [])


def escape_strings(values: list[str]) -> list[str]:
    """COPY text escapes (backslash, tab, newline, CR) for a column of strings; usually a no-op."""
    joined = "\x00".join(values)
    if not any(c in joined for c in _SPECIAL):
        return values
    return [v.translate(_ESCAPES) for v in values]


def _scalar_text(v: Any, json_text: Callable[[Any], str]) -> str:
    if v is None:
        return NULL
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, str):
        return v.translate(_ESCAPES)
    if isinstance(v, dt.date | dt.time):   # datetime too
        return v.isoformat()
    if isinstance(v, dict | list | tuple):
        return json_text(v).translate(_ESCAPES)
    return str(v).translate(_ESCAPES)      # int, float, Decimal, numpy scalars


def text_column(values: list[Any], json_text: Callable[[Any], str], *, as_json: bool = False) -> list[str]:
    """One column in COPY text form; ``as_json`` serialises every non-NULL value with ``json_text``."""
    n = len(values)
    nulls = values.count(None)
    if nulls == n:
        return [NULL] * n
    if as_json:
        return [NULL if v is None else json_text(v).translate(_ESCAPES) for v in values]
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if kinds == {str}:
        present = values if not nulls else [v for v in values if v is not None]
        escaped = escape_strings(present)
        if not nulls:
            return escaped
        it = iter(escaped)
        return [NULL if v is None else next(it) for v in values]
    if kinds <= {int, float}:
        return [NULL if v is None else repr(v) for v in values]
    # Mixed or other types (dates, bools, numbers as text …): value by value, repeated values once.
    memo: dict[Any, str] = {}
    out = []
    for v in values:
        try:
            text = memo.get((type(v), v))
            if text is None:
                text = memo[(type(v), v)] = _scalar_text(v, json_text)
        except TypeError:   # unhashable
            text = _scalar_text(v, json_text)
        out.append(text)
    return out


def constant_text(values: Iterable[Any], json_text: Callable[[Any], str]) -> str:
    """Columns with the same value in every row, as the COPY text they add to each row."""
    return "\t".join(_scalar_text(v, json_text) for v in values)


def hex_ewkb(geoms: np.ndarray, srid: int) -> list[str]:
    """Hex EWKB with ``srid`` per geometry, the form the geometry type's COPY input reads.

    2D points (the bulk case) are laid out in one numpy buffer (25 bytes each: byte order,
    type with the SRID flag, SRID, x, y) and hexed at once, ~10x faster than shapely's
    per-geometry writer; anything else goes through shapely."""
    n = len(geoms)
    if n and (shapely.get_type_id(geoms) == 0).all() and not shapely.has_z(geoms).any() \
            and not shapely.is_empty(geoms).any():
        buf = np.empty((n, 25), dtype=np.uint8)
        buf[:, :9] = np.frombuffer(struct.pack("<BII", 1, 0x20000001, srid), dtype=np.uint8)
        buf[:, 9:] = np.ascontiguousarray(shapely.get_coordinates(geoms), dtype="<f8").view(np.uint8)
        text = buf.tobytes().hex().upper()
        return [text[i:i + 50] for i in range(0, 50 * n, 50)]
    return shapely.to_wkb(shapely.set_srid(geoms, srid), hex=True, include_srid=True, flavor="extended").tolist()


def copy_body(texts: Sequence[list[str]], constant: str | None = None) -> bytes:
    """COPY-text columns (same length) as the bytes of one COPY: rows of tab-separated values,
    each ending with ``constant`` (constant_text: columns the same in every row) when given."""
    if not texts or not texts[0]:
        return b""
    end = "\n" if constant is None else f"\t{constant}\n"
    rows = texts[0] if len(texts) == 1 else map("\t".join, zip(*texts, strict=True))
    return (end.join(rows) + end).encode()


def copy_data(conn: sa.Connection, table: sa.Table, columns: Sequence[str], parts: Sequence[bytes]) -> None:
    """One COPY of ``parts`` (rows in COPY text form, ``columns`` in order, e.g. copy_body()) into
    ``table``: one statement however many chunks, so statement-level triggers run once."""
    if not any(parts):
        return
    cols = ", ".join(f'"{c}"' for c in columns)
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({cols}) FROM STDIN') as cp:
        for data in parts:
            cp.write(data)


Job = tuple[sa.Table, Sequence[str], bytes]   # a COPY: table, columns, copy_body()


class CopyPipe:
    """Bulk rows collected into large COPY statements, run in a worker thread while the caller
    prepares the next chunk.

    ``add`` queues a chunk's COPY data; chunks bound for the same table and columns join one
    statement (statement-level triggers — the tile cell counts above all — cost far less per
    row on 100,000 rows than on 25,000). ``start`` runs what is queued in a worker: PostgreSQL
    spends most of a bulk load inside the COPY (indexes, triggers), and the client's work for
    the next chunk (COPY text, history JSON) needs no database. The connection belongs to the
    worker from ``start`` until ``wait`` returns, which raises what the COPY raised.
    """

    def __init__(self, conn: sa.Connection):
        self.conn = conn
        self.queued_rows = 0
        self._queued: dict[tuple[str, tuple[str, ...]], tuple[sa.Table, Sequence[str], list[bytes]]] = {}
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def add(self, jobs: list[Job], rows: int) -> None:
        for table, columns, data in jobs:
            self._queued.setdefault((table.name, tuple(columns)), (table, columns, []))[2].append(data)
        self.queued_rows += rows

    def start(self) -> None:
        """Run the queued COPY statements in the worker (after the previous ones have ended)."""
        self.wait()
        jobs, self._queued, self.queued_rows = list(self._queued.values()), {}, 0
        if not jobs:
            return

        def run() -> None:
            try:
                for table, columns, parts in jobs:
                    copy_data(self.conn, table, columns, parts)
            except BaseException as exc:   # raised by wait(), in the caller's thread
                self._error = exc

        self._thread = threading.Thread(target=run, name="geoapi-copy", daemon=True)
        self._thread.start()

    def drop(self) -> None:
        """Forget what is queued (the transaction is being abandoned)."""
        self._queued, self.queued_rows = {}, 0

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error
