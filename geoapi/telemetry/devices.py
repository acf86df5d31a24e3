"""Which asset a device message belongs to: smart covers by IMEI / platform device id / SN,
积水点 by their gauge's device_id. Kept in memory and refreshed from the Store's change feed."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from geoapi.storage import ChangeSet, Store

# layer → fields that identify its devices, in lookup order
KEY_FIELDS = {"smart_covers": ("imei", "platform_device_id", "device_sn"),
              "waterlogging_points": ("device_id",)}
# fields the engine reads (thresholds, suppression, the state it writes back)
STATE_FIELDS = {
    "smart_covers": ("status", "admin_code", "heartbeat_s", "tilt_threshold_deg", "baseline_tilt_deg",
                     "fortify_state", "device_state", "online_state", "alarm_state", "last_seen_at"),
    "waterlogging_points": ("status", "admin_code", "warn_depth_cm", "close_depth_cm", "heartbeat_s",
                            "last_seen_at"),
}


@dataclass
class Device:
    layer: str
    fid: int
    keys: tuple[str, ...]
    props: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> tuple[str, int]:
        return (self.layer, self.fid)

    @property
    def key(self) -> str:
        return self.keys[0]


class DeviceIndex:
    def __init__(self, store: Store):
        self.store = store
        self.layers = [lid for lid in KEY_FIELDS if lid in store.registry]
        self._by_key: dict[str, tuple[str, int]] = {}
        self._devices: dict[tuple[str, int], Device] = {}
        self._lock = threading.Lock()

    def _select(self, layer_id: str, ids: list[int] | None = None):
        t = self.store.table(layer_id)
        cols = ["id", *KEY_FIELDS[layer_id], *STATE_FIELDS[layer_id]]
        stmt = sa.select(*[t.c[c] for c in cols])
        if ids is not None:
            stmt = stmt.where(t.c.id.in_(ids))
        return stmt

    def _put(self, layer_id: str, row) -> None:
        m = dict(row._mapping)
        keys = tuple(str(m[k]).strip() for k in KEY_FIELDS[layer_id] if m.get(k) not in (None, ""))
        ref = (layer_id, m["id"])
        old = self._devices.pop(ref, None)
        if old is not None:
            for k in old.keys:
                if self._by_key.get(k) == ref:
                    del self._by_key[k]
        if not keys:
            return
        props = {k: m[k] for k in STATE_FIELDS[layer_id]}
        if isinstance(props.get("last_seen_at"), dt.datetime) and props["last_seen_at"].tzinfo is None:
            props["last_seen_at"] = props["last_seen_at"].replace(tzinfo=dt.UTC)
        self._devices[ref] = Device(layer_id, m["id"], keys, props)
        for k in keys:
            self._by_key.setdefault(k, ref)

    def load(self) -> None:
        with self.store.read() as conn, self._lock:
            self._by_key.clear()
            self._devices.clear()
            for layer_id in self.layers:
                for row in conn.execute(self._select(layer_id)):
                    self._put(layer_id, row)

    def refresh(self, layer_id: str, ids: list[int]) -> None:
        if layer_id not in self.layers or not ids:
            return
        with self.store.read() as conn, self._lock:
            seen = set()
            for row in conn.execute(self._select(layer_id, ids)):
                self._put(layer_id, row)
                seen.add(row.id)
            for fid in set(ids) - seen:  # deleted
                old = self._devices.pop((layer_id, fid), None)
                for k in old.keys if old else ():
                    self._by_key.pop(k, None)

    def on_change(self, change: ChangeSet) -> None:
        """Store listener: keep device config (fortify_state, thresholds, ids) current."""
        if change.layer in self.layers:
            self.refresh(change.layer, change.ids)

    def find(self, *keys: str) -> Device | None:
        with self._lock:
            for k in keys:
                ref = self._by_key.get(k)
                if ref is not None:
                    return self._devices.get(ref)
        return None

    def get(self, ref: tuple[str, int]) -> Device | None:
        with self._lock:
            return self._devices.get(ref)

    def all(self) -> list[Device]:
        with self._lock:
            return list(self._devices.values())
