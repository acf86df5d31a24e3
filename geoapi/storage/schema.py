"""Tables: the core tables (history, keys, serials, import batches) and one table per layer,
derived from its layer file. Geometry is EPSG:4490 with a spatial index."""

from __future__ import annotations

import bisect

import sqlalchemy as sa
from geoalchemy2 import Geometry

from layers.spec import FieldSpec, LayerSpec

SRID = 4490

metadata = sa.MetaData()

history = sa.Table(
    "history", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("layer", sa.String(40), nullable=False),
    sa.Column("feature_id", sa.Integer, nullable=False),
    # An insert entry of a bulk write covers a run of ids, feature_id..last_feature_id (NULL: one
    # feature); read entries through feature_entries(), which finds a feature inside a run.
    sa.Column("last_feature_id", sa.Integer),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("op", sa.String(10), nullable=False),  # insert | update | delete
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("batch_id", sa.String(40)),
    sa.Column("before", sa.JSON),
    sa.Column("after", sa.JSON),
    sa.Index("ix_history_feature", "layer", "feature_id"),
    sa.Index("ix_history_batch", "batch_id"),
    sa.Index("ix_history_runs", "layer", "last_feature_id",
             postgresql_where=sa.text("last_feature_id IS NOT NULL"),
             sqlite_where=sa.text("last_feature_id IS NOT NULL")),
)


def feature_entries(layer_id: str, fids: list[int]) -> sa.ColumnElement[bool]:
    """History entries of these features: their own, and the runs (``last_feature_id``) that may
    hold one of them; keep a run's row only for the ids it holds (``held``). For one feature the
    condition is exact."""
    h = history
    return sa.and_(h.c.layer == layer_id,
                   sa.or_(h.c.feature_id.in_(fids),
                          sa.and_(h.c.last_feature_id >= min(fids), h.c.feature_id <= max(fids))))


def entry_ids(row) -> range:
    """The feature ids a history row is about: one, or its run."""
    return range(row.feature_id, (row.last_feature_id or row.feature_id) + 1)


def held(row, fids: list[int]) -> list[int]:
    """Those of the sorted ``fids`` that a history row is about (a run's row among others)."""
    return fids[bisect.bisect_left(fids, row.feature_id):bisect.bisect_right(fids, row.last_feature_id or row.feature_id)]

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key_id", sa.String(16), nullable=False, unique=True),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("name", sa.String(100)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

code_serials = sa.Table(
    "code_serials", metadata,
    sa.Column("prefix", sa.String(12), primary_key=True),
    sa.Column("last", sa.Integer, nullable=False),
)

import_batches = sa.Table(
    "import_batches", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("layer", sa.String(40), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),  # queued | running | done | failed | rolled_back
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("file_name", sa.String(300)),
    sa.Column("file_size", sa.BigInteger),
    sa.Column("file_sha256", sa.String(64)),
    sa.Column("options", sa.JSON),
    sa.Column("report", sa.JSON),
    sa.Column("rolled_back_at", sa.DateTime(timezone=True)),
)

# Telemetry and alarms (revision 0002). Big ids on PostGIS; SQLite needs INTEGER for rowid keys.
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

telemetry = sa.Table(
    "telemetry", metadata,
    sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
    sa.Column("device_key", sa.String(64), nullable=False),  # IMEI / platform device id / gauge id
    sa.Column("msg_id", sa.String(100), nullable=False),  # platform id, or derived from time + readings
    sa.Column("layer", sa.String(40)),
    sa.Column("feature_id", sa.Integer),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),  # device time
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source", sa.String(20), nullable=False),  # http | ctwing | onenet | mqtt
    sa.Column("tilt_deg", sa.Float),
    sa.Column("cover_state", sa.String(10)),
    sa.Column("water_level_m", sa.Float),
    sa.Column("water_state", sa.String(10)),
    sa.Column("depth_cm", sa.Float),
    sa.Column("gas_lel_pct", sa.Float),
    sa.Column("h2s_ppm", sa.Float),  # revision 0003
    sa.Column("battery_pct", sa.Float),
    sa.Column("voltage_v", sa.Float),
    sa.Column("rsrp_dbm", sa.Float),
    sa.Column("snr", sa.Float),
    sa.Column("csq", sa.Float),
    sa.Column("temp_c", sa.Float),
    sa.Column("flags", sa.JSON),  # vibration / displaced / tamper / smoke / status codes
    sa.Column("raw", sa.JSON),
    sa.Index("ux_telemetry_msg", "msg_id", "device_key", unique=True),
    sa.Index("ix_telemetry_device_ts", "device_key", "ts"),
)

alarms = sa.Table(
    "alarms", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("type", sa.String(40), nullable=False),  # COVER_OPEN, PONDING_WARN … (DOMAIN.md §10)
    sa.Column("level", sa.String(10), nullable=False),  # 提示 | 预警 | 报警 | 紧急 | 信息
    sa.Column("state", sa.String(20), nullable=False),  # open | acknowledged | cleared | resolved
    sa.Column("layer", sa.String(40), nullable=False),
    sa.Column("feature_id", sa.Integer, nullable=False),
    sa.Column("device_key", sa.String(64), nullable=False),
    sa.Column("admin_code", sa.String(6)),
    sa.Column("message", sa.String(300)),
    sa.Column("value", sa.JSON),  # the reading that raised it
    sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("condition_cleared_at", sa.DateTime(timezone=True)),
    sa.Column("acked_at", sa.DateTime(timezone=True)),
    sa.Column("acked_by", sa.String(100)),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("closed_by", sa.String(100)),
    sa.Column("note", sa.String(1000)),
    sa.Index("ix_alarms_state", "state", "type"),
    sa.Index("ix_alarms_feature", "layer", "feature_id"),
    sa.Index("ix_alarms_raised", "raised_at"),
)

alarm_events = sa.Table(
    "alarm_events", metadata,
    sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
    sa.Column("alarm_id", sa.Integer, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),  # raised | acknowledged | cleared | resolved …
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("note", sa.String(1000)),
    sa.Column("detail", sa.JSON),
    sa.Index("ix_alarm_events_alarm", "alarm_id"),
)

CORE_TABLES = frozenset(metadata.tables)

_TYPES = {
    "int": sa.BigInteger,
    "float": sa.Float,
    "bool": sa.Boolean,
    "date": sa.Date,
    "datetime": lambda: sa.DateTime(timezone=True),
    "enum": lambda: sa.String(64),
    "enum_list": lambda: sa.JSON(none_as_null=True),
    "json": lambda: sa.JSON(none_as_null=True),
}


def column_type(field: FieldSpec) -> sa.types.TypeEngine:
    if field.type == "text":
        return sa.String(field.max_length) if field.max_length else sa.Text()
    return _TYPES[field.type]()


def geometry_type(layer: LayerSpec) -> Geometry:
    # geoalchemy2 takes the Z from the type name ("LINESTRINGZ"), not from `dimension` alone.
    return Geometry(geometry_type=layer.geometry.upper() + ("Z" if layer.has_z else ""), srid=SRID,
                    dimension=3 if layer.has_z else 2,
                    spatial_index=True, nullable=False)


def geography_index_ddl(layer: LayerSpec) -> str | None:
    """PostGIS only: a GiST index on ``geom::geography`` for point layers, so nearest searches
    can order by spherical metres (``<->`` on geography) instead of planar degrees. Lines and
    polygons get none: geography reads their edges as great circles, not the stored lon/lat
    segments, so the sphere/ellipsoid bound of geoapi.services.nearest would not hold for them.

    ``buffering = on``: geography has no sorted GiST build; the buffered build took 4.0 s for a
    million points where the default took 5.2–5.7 s (bench/README.md, "Imports"). An initial
    load rebuilds the index from its own definition (geoapi.storage.pgload), option included."""
    if not layer.is_point:
        return None
    return (f'CREATE INDEX IF NOT EXISTS "ix_{layer.id}_geog" ON "{layer.id}" USING gist ((geom::geography)) '
            f'WITH (buffering = on)')


def layer_table(layer: LayerSpec, md: sa.MetaData) -> sa.Table:
    """The table of one layer: id, the fields (common + own), system columns, geom."""
    if layer.id in CORE_TABLES:
        raise ValueError(f"layer id {layer.id!r} is reserved for a core table")
    cols: list[sa.Column] = [sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)]
    for f in layer.all_fields:
        cols.append(sa.Column(f.name, column_type(f), nullable=True))
    cols += [
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=False),
        sa.Column("src_file", sa.String(300)),
        sa.Column("src_crs", sa.String(100)),
        sa.Column("batch_id", sa.String(40)),
        sa.Column("extra", sa.JSON(none_as_null=True)),
        sa.Column("geom", geometry_type(layer)),
    ]
    indexes = [sa.Index(f"ix_{layer.id}_status", "status"), sa.Index(f"ix_{layer.id}_updated_at", "updated_at"),
               sa.Index(f"ix_{layer.id}_admin_code", "admin_code")]
    if layer.identifier:
        indexes.append(sa.Index(f"ux_{layer.id}_obj_code", "obj_code", unique=True))
    if layer.code_field and layer.code_field != "obj_code":
        indexes.append(sa.Index(f"ux_{layer.id}_{layer.code_field}", layer.code_field, unique=True))
    # AUTOINCREMENT on SQLite: a deleted feature's id is never handed out again, so the history
    # of (layer, id) always belongs to one feature (PostgreSQL sequences never reuse anyway).
    return sa.Table(layer.id, md, *cols, *indexes, sqlite_autoincrement=True)
