"""Telemetry, alarm and dashboard queries. Callers pass plain dicts; dialect differences stay here."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite

from geoapi.errors import NotFoundError
from geoapi.storage import schema
from geoapi.storage.store import Store

ACTIVE_STATES = ("open", "acknowledged")
TELEMETRY_COLUMNS = tuple(c.name for c in schema.telemetry.c if c.name != "id")
ALARM_COLUMNS = tuple(c.name for c in schema.alarms.c)


class AlarmNotFoundError(NotFoundError):
    code = "alarm_not_found"


@dataclass
class AlarmFilter:
    state: list[str] | None = None
    type: list[str] | None = None
    layer: str | None = None
    district: str | None = None      # admin_code or district name
    since: dt.datetime | None = None
    feature_id: int | None = None
    limit: int = 100
    offset: int = 0


def _aware(value: Any) -> Any:
    # SQLite hands back naive datetimes for timezone columns; every stored time is UTC.
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _row(r) -> dict[str, Any]:
    return {k: _aware(v) for k, v in r._mapping.items()}


class TelemetryStore:
    def __init__(self, store: Store):
        self.store = store

    def _insert(self, table: sa.Table):
        return (postgresql if self.store.dialect == "postgis" else sqlite).insert(table)

    def write(self):
        """A write connection in a transaction (SpatiaLite takes the write lock up front)."""
        return self.store.engine.connect().execution_options(geoapi_write=True)

    # -- telemetry ------------------------------------------------------------------------
    def known_messages(self, conn: sa.Connection, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (device_key, msg_id) pairs are already stored."""
        t = schema.telemetry
        found: set[tuple[str, str]] = set()
        ids = sorted({m for _, m in keys})
        for i in range(0, len(ids), 500):
            rows = conn.execute(sa.select(t.c.device_key, t.c.msg_id).where(t.c.msg_id.in_(ids[i:i + 500])))
            found.update((r.device_key, r.msg_id) for r in rows)
        return found & set(keys)

    def insert_telemetry(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        """Insert rows; a duplicate (device_key, msg_id) that raced us is skipped, not an error."""
        if not rows:
            return
        full = [{c: r.get(c) for c in TELEMETRY_COLUMNS} for r in rows]
        conn.execute(self._insert(schema.telemetry).on_conflict_do_nothing(index_elements=["msg_id", "device_key"]),
                     full)

    def recent_telemetry(self, device_key: str, limit: int = 100) -> list[dict[str, Any]]:
        t = schema.telemetry
        with self.store.read() as conn:
            rows = conn.execute(sa.select(t).where(t.c.device_key == device_key)
                                .order_by(t.c.ts.desc(), t.c.id.desc()).limit(limit))
            return [_row(r) for r in rows]

    # -- alarms ---------------------------------------------------------------------------
    def insert_alarm(self, conn: sa.Connection, values: dict[str, Any]) -> int:
        a = schema.alarms
        return conn.execute(a.insert().values(**values).returning(a.c.id)).scalar_one()

    def update_alarm(self, conn: sa.Connection, alarm_id: int, values: dict[str, Any]) -> None:
        a = schema.alarms
        conn.execute(a.update().where(a.c.id == alarm_id).values(**values))

    def add_events(self, conn: sa.Connection, events: list[dict[str, Any]]) -> None:
        if events:  # executemany needs the same keys in every row
            cols = [c.name for c in schema.alarm_events.c if c.name != "id"]
            conn.execute(schema.alarm_events.insert(), [{c: e.get(c) for c in cols} for e in events])

    def alarm(self, alarm_id: int, conn: sa.Connection | None = None) -> dict[str, Any]:
        a = schema.alarms
        stmt = sa.select(a).where(a.c.id == alarm_id)
        if conn is None:
            with self.store.read() as c:
                row = c.execute(stmt).first()
        else:
            row = conn.execute(stmt).first()
        if row is None:
            raise AlarmNotFoundError(f"no alarm {alarm_id}")
        return _row(row)

    def alarm_history(self, alarm_id: int) -> list[dict[str, Any]]:
        e = schema.alarm_events
        with self.store.read() as conn:
            rows = conn.execute(sa.select(e).where(e.c.alarm_id == alarm_id).order_by(e.c.id))
            return [_row(r) for r in rows]

    def active_alarms(self) -> list[dict[str, Any]]:
        """Alarms not yet closed (open, acknowledged): the rules engine resumes from them."""
        a = schema.alarms
        with self.store.read() as conn:
            return [_row(r) for r in conn.execute(sa.select(a).where(a.c.state.in_(ACTIVE_STATES)).order_by(a.c.id))]

    def _district_code(self, conn: sa.Connection, district: str) -> str:
        if district.isdigit() or "districts" not in self.store.registry:
            return district
        t = self.store.table("districts")
        code = conn.execute(sa.select(t.c.admin_code).where(t.c.name == district).limit(1)).scalar()
        return code or district

    def list_alarms(self, f: AlarmFilter) -> tuple[list[dict[str, Any]], int]:
        a = schema.alarms
        with self.store.read() as conn:
            conds = []
            if f.state:
                conds.append(a.c.state.in_(f.state))
            if f.type:
                conds.append(a.c.type.in_(f.type))
            if f.layer:
                conds.append(a.c.layer == f.layer)
            if f.district:
                conds.append(a.c.admin_code == self._district_code(conn, f.district))
            if f.since:
                conds.append(a.c.raised_at >= f.since)
            if f.feature_id is not None:
                conds.append(a.c.feature_id == f.feature_id)
            total = conn.execute(sa.select(func.count()).select_from(a).where(*conds)).scalar_one()
            rows = conn.execute(sa.select(a).where(*conds).order_by(a.c.raised_at.desc(), a.c.id.desc())
                                .limit(f.limit).offset(f.offset))
            return [_row(r) for r in rows], total

    # -- live fields of the asset -----------------------------------------------------------
    def update_live(self, conn: sa.Connection, layer_id: str, rows: list[dict[str, Any]],
                    columns: Iterable[str]) -> None:
        """Set last_* columns without a new version or history row (telemetry that changes no state).

        Each row has ``id`` and any of ``columns``; a missing value keeps the stored one.
        """
        if not rows:
            return
        t = self.store.table(layer_id)
        cols = [c for c in columns if c in t.c]
        stmt = (t.update().where(t.c.id == sa.bindparam("_id"))
                .values({c: func.coalesce(sa.bindparam(f"_v_{c}", type_=t.c[c].type), t.c[c]) for c in cols}))
        conn.execute(stmt, [{"_id": r["id"], **{f"_v_{c}": r.get(c) for c in cols}} for r in rows])

    # -- 一张图 dashboard ---------------------------------------------------------------------
    def _group(self, conn: sa.Connection, layer_id: str, *cols: str) -> list[tuple]:
        t = self.store.table(layer_id)
        sel = [t.c[c] for c in cols]
        return [tuple(r) for r in conn.execute(sa.select(*sel, func.count()).group_by(*sel).order_by(*sel))]

    def dashboard_manholes(self) -> dict[str, Any]:
        reg = self.store.registry
        out: dict[str, Any] = {}
        a = schema.alarms
        with self.store.read() as conn:
            if "manholes" in reg:
                t = self.store.table("manholes")
                out["manholes"] = {
                    "total": conn.execute(sa.select(func.count()).select_from(t)).scalar_one(),
                    "by_status": {k or "未知": n for k, n in self._group(conn, "manholes", "status")},
                    "defects": dict(Counter(d for (ds,) in conn.execute(sa.select(t.c.defects)
                                                                         .where(t.c.defects.is_not(None)))
                                            for d in (ds or [])).most_common()),
                    "rectify_by_year": _by_year(self._group(conn, "manholes", "rectify_year", "rectify_status")),
                }
            if "smart_covers" in reg:
                out["smart_covers"] = {
                    "total": sum(n for _, n in self._group(conn, "smart_covers", "status")),
                    "by_online_state": {k or "未上报": n for k, n in self._group(conn, "smart_covers", "online_state")},
                    "by_status": {k or "未知": n for k, n in self._group(conn, "smart_covers", "status")},
                    "by_alarm_state": {k or "正常": n for k, n in self._group(conn, "smart_covers", "alarm_state")},
                }
            names = {}
            if "districts" in reg:
                d = self.store.table("districts")
                names = dict(conn.execute(sa.select(d.c.admin_code, d.c.name)).all())
            active = a.c.state.in_(ACTIVE_STATES)
            by_type = conn.execute(sa.select(a.c.type, a.c.level, func.count()).where(active)
                                   .group_by(a.c.type, a.c.level).order_by(a.c.type)).all()
            by_district = conn.execute(sa.select(a.c.admin_code, func.count()).where(active)
                                       .group_by(a.c.admin_code).order_by(a.c.admin_code)).all()
        out["open_alarms"] = {
            "total": sum(n for _, _, n in by_type),
            "by_type": [{"type": t, "level": lv, "count": n} for t, lv, n in by_type],
            "by_district": [{"admin_code": c, "name": names.get(c), "count": n} for c, n in by_district],
        }
        return out


def _by_year(rows: list[tuple]) -> list[dict[str, Any]]:
    years: dict[Any, dict[str, int]] = {}
    for year, status, n in rows:
        years.setdefault(year, {})[status or "未知"] = n
    done = ("已整治待验收", "已验收", "已录入省系统")
    out = []
    for year, counts in years.items():
        total = sum(counts.values())
        finished = sum(counts.get(s, 0) for s in done)
        out.append({"year": year, "total": total, "done": finished, "by_status": counts,
                    "progress": round(finished / total, 3) if total else None})
    return sorted(out, key=lambda r: (r["year"] is None, r["year"] or 0))
