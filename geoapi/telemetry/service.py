"""The telemetry service: a queue and one worker thread that batches readings, stores them,
runs the rules engine, writes alarms and device state, then publishes events.

One worker owns the engine, so rule state needs no locks; HTTP handlers and the MQTT thread
only enqueue. Each batch is one database transaction: telemetry rows, alarm changes and the
asset write-back commit together. Run it in one process per database (docs/telemetry.md).
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from geoapi.errors import ConflictError, DatabaseUnavailableError
from geoapi.events import EventBus
from geoapi.storage import Store
from geoapi.storage.telemetry_store import TelemetryStore
from geoapi.telemetry.devices import Device, DeviceIndex
from geoapi.telemetry.engine import Action, Clear, Escalate, Raise, RulesEngine
from geoapi.telemetry.model import IngestResult, Reading
from geoapi.telemetry.rules import ALARM_NAMES, load_thresholds

log = logging.getLogger("geoapi.telemetry")
ACTOR = "telemetry"

# reading → asset column, per layer (the "live" fields written on every message)
LIVE = {
    "smart_covers": {"tilt_deg": "last_tilt_deg", "cover_state": "last_cover_state", "water_state": "last_water_state",
                     "water_level_m": "last_water_level_m", "gas_lel_pct": "last_gas_lel_pct",
                     "h2s_ppm": "last_h2s_ppm",
                     "battery_pct": "last_battery_pct", "rsrp_dbm": "last_rsrp_dbm"},
    "waterlogging_points": {"depth_cm": "last_depth_cm"},
}
STATE_COLUMNS = ("status", "alarm_state", "online_state")


@dataclass
class _Ingest:
    readings: list[Reading]
    future: Future
    on_done: Callable[[IngestResult], None] | None = None
    result: IngestResult = field(default_factory=IngestResult)


@dataclass
class _Command:
    fn: Callable[[], Any]
    future: Future


class _Tick:
    pass


class TelemetryService:
    def __init__(self, store: Store, bus: EventBus, *, thresholds_file=None, tick_s: float = 1.0,
                 batch_max: int = 1000, queue_max: int = 100_000):
        self.store = store
        self.db = TelemetryStore(store)
        self.bus = bus
        self.devices = DeviceIndex(store)
        self.engine = RulesEngine(load_thresholds(thresholds_file))
        self.tick_s = tick_s
        self.batch_max = batch_max
        self.queue: queue.Queue = queue.Queue(maxsize=queue_max)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.stats = {"batches": 0, "messages": 0, "errors": 0}

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> TelemetryService:
        self.devices.load()
        self._restore()
        self.store.subscribe(self.devices.on_change)
        for name, target in (("telemetry-worker", self._work), ("telemetry-tick", self._clock)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        self.queue.put(None)
        for t in self._threads:
            t.join(timeout=10)
        self.store.unsubscribe(self.devices.on_change)

    def _restore(self) -> None:
        self.engine.runtime.clear()
        now = dt.datetime.now(dt.UTC)
        for alarm in self.db.active_alarms():
            self.engine.restore(alarm, now)

    # -- the API of the service (any thread) -------------------------------------------------------
    def submit(self, readings: list[Reading], on_done: Callable[[IngestResult], None] | None = None) -> Future:
        fut: Future = Future()
        try:
            self.queue.put_nowait(_Ingest(readings, fut, on_done))
        except queue.Full:
            fut.set_exception(DatabaseUnavailableError("telemetry queue is full; retry later"))
        return fut

    def call(self, fn: Callable[[], Any]) -> Future:
        """Run ``fn`` on the worker thread (it may touch the engine), in order with ingest."""
        fut: Future = Future()
        self.queue.put(_Command(fn, fut))
        return fut

    def acknowledge(self, alarm_id: int, actor: str, note: str | None) -> Future:
        """Future of the acknowledged alarm (ConflictError unless it is open)."""
        return self.call(lambda: self._close(alarm_id, actor, note, resolve=False))

    def resolve(self, alarm_id: int, actor: str, note: str | None) -> Future:
        """Future of the resolved alarm; a lasting condition will raise a new one."""
        return self.call(lambda: self._close(alarm_id, actor, note, resolve=True))

    # -- threads -----------------------------------------------------------------------------------
    def _clock(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.queue.put(_Tick(), timeout=self.tick_s)
            except queue.Full:
                pass

    def _work(self) -> None:
        while True:
            job = self.queue.get()
            if job is None:
                return
            jobs = [job]
            size = len(job.readings) if isinstance(job, _Ingest) else 0
            while size < self.batch_max:
                try:
                    nxt = self.queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self.queue.put(None)
                    break
                jobs.append(nxt)
                size += len(nxt.readings) if isinstance(nxt, _Ingest) else 0
            self._run(jobs)

    def _run(self, jobs: list) -> None:
        ingest = [j for j in jobs if isinstance(j, _Ingest)]
        ticks = any(isinstance(j, _Tick) for j in jobs)
        if ingest or ticks:
            ok = self._attempt(ingest, ticks)
            if not ok and len(ingest) > 1:
                # retry one request at a time, so one bad message does not sink the others
                for j in ingest:
                    self._attempt([j], False, final=True)
            elif not ok:
                self._attempt(ingest, False, final=True)
        for j in jobs:
            if isinstance(j, _Command):
                try:
                    j.future.set_result(j.fn())
                except Exception as exc:
                    j.future.set_exception(exc)

    def _attempt(self, ingest: list[_Ingest], tick: bool, final: bool = False) -> bool:
        for j in ingest:
            j.result = IngestResult()
        try:
            self._process(ingest, tick=tick)
            return True
        except Exception as exc:  # rolled back; rule state is rebuilt from the database
            self.stats["errors"] += 1
            log.exception("telemetry batch of %d job(s) failed%s", len(ingest), "" if final else "; retrying")
            try:
                self._restore()
            except Exception:
                log.exception("could not reload alarm state")
            if final:
                for j in ingest:
                    if not j.future.done():
                        j.future.set_exception(exc if isinstance(exc, DatabaseUnavailableError)
                                               else DatabaseUnavailableError(f"telemetry not stored: {exc}"))
            return False

    # -- one batch -----------------------------------------------------------------------------------
    def _process(self, ingest: list[_Ingest], tick: bool) -> None:
        tick_actions = self.engine.tick(self.devices.all(), dt.datetime.now(dt.UTC)) if tick else []
        if not ingest and not tick_actions:
            return  # an idle tick opens no write transaction
        items: list[tuple[_Ingest, Reading, Device]] = []
        seen: set[tuple[str, str]] = set()
        for job in ingest:
            for r in job.readings:
                device = self.devices.find(r.device_key, *r.alt_keys)
                if device is None:
                    if r.device_key not in job.result.unknown_devices:
                        job.result.unknown_devices.append(r.device_key)
                    continue
                key = (device.key, r.msg_id)
                if key in seen:
                    job.result.duplicates += 1
                    continue
                seen.add(key)
                items.append((job, r, device))
        events: list[tuple[str, dict]] = []
        with self.db.write() as conn, conn.begin():
            known = self.db.known_messages(conn, [(d.key, r.msg_id) for _, r, d in items])
            fresh = []
            for job, r, d in items:
                if (d.key, r.msg_id) in known:
                    job.result.duplicates += 1
                else:
                    fresh.append((job, r, d))
            fresh.sort(key=lambda x: x[1].ts)  # order within the batch by device time
            actions: list[Action] = []
            rows = []
            touched: dict[tuple[str, int], Device] = {}
            latest: dict[tuple[str, int], dict[str, Any]] = {}
            for job, r, d in fresh:
                acts, late = self.engine.evaluate(d, r)
                actions += acts
                job.result.accepted += 1
                job.result.out_of_order += int(late)
                rows.append(self._telemetry_row(d, r))
                touched[d.ref] = d
                live = latest.setdefault(d.ref, {})
                live["last_seen_at"] = max(live.get("last_seen_at", r.received_at), r.received_at)
                if not late:
                    live.update(self._live(d, r))
                    live["_mono"] = r.received_mono
            for a in tick_actions:
                dev = self.devices.get(a.ref)
                if dev is not None:
                    touched[a.ref] = dev
            actions = tick_actions + actions
            self.db.insert_telemetry(conn, rows)
            events += self._apply(conn, actions, latest)
            state_events, changes = self._write_back(conn, touched, latest)
            events += state_events
        self.store.publish(changes)  # after commit: tile invalidation, device index refresh
        self.stats["batches"] += 1
        self.stats["messages"] += len(fresh)
        for kind, data in events:
            self.bus.publish(kind, data)
        for job in ingest:
            if job.on_done is not None:
                try:
                    job.on_done(job.result)
                except Exception:
                    log.exception("telemetry completion callback failed")
            if not job.future.done():
                job.future.set_result(job.result)

    def _telemetry_row(self, d: Device, r: Reading) -> dict[str, Any]:
        return {"device_key": d.key, "msg_id": r.msg_id, "layer": d.layer, "feature_id": d.fid, "ts": r.ts,
                "received_at": r.received_at, "source": r.source, **r.values,
                "flags": {k: v for k, v in r.flags.items()} or None, "raw": r.raw}

    def _live(self, d: Device, r: Reading) -> dict[str, Any]:
        layer = self.store.layer(d.layer)
        out = {}
        values = dict(r.values)
        if d.layer == "waterlogging_points" and "depth_cm" not in values and "water_level_m" in values:
            values["depth_cm"] = values["water_level_m"] * 100
        for name, column in LIVE[d.layer].items():
            v = values.get(name)
            spec = layer.field(column)
            if v is None or spec is None:
                continue
            if spec.type == "float" and ((spec.min is not None and v < spec.min) or (spec.max is not None and v > spec.max)):
                continue  # outside the asset field's range: kept in telemetry only
            out[column] = v
        return out

    def _apply(self, conn, actions: list[Action], latest: dict) -> list[tuple[str, dict]]:
        events: list[tuple[str, dict]] = []
        raised: dict[tuple[tuple[str, int], str], int] = {}
        alarm_events = []
        for a in actions:
            device = self.devices.get(a.ref)
            if isinstance(a, Raise):
                values = {"type": a.code, "level": a.level, "state": "open", "layer": a.ref[0], "feature_id": a.ref[1],
                          "device_key": device.key if device else "", "admin_code": (device.props.get("admin_code")
                                                                                    if device else None),
                          "message": ALARM_NAMES.get(a.code, a.code), "value": a.value, "raised_at": a.at}
                alarm_id = self.db.insert_alarm(conn, values)
                a.state.alarm_id = alarm_id
                raised[(a.ref, a.code)] = alarm_id
                alarm_events.append({"alarm_id": alarm_id, "at": a.at, "action": "raised", "actor": ACTOR,
                                     "detail": a.value})
                mono = latest.get(a.ref, {}).get("_mono")
                events.append(("alarm", {"action": "raised", "alarm": _public({**values, "id": alarm_id}),
                                         "latency_ms": round((time.monotonic() - mono) * 1000, 1) if mono else None}))
            elif isinstance(a, Escalate):
                alarm_id = a.alarm_id or raised.get((a.ref, a.code))
                if alarm_id is None:
                    continue
                self.db.update_alarm(conn, alarm_id, {"level": a.level, "value": a.value})
                alarm_events.append({"alarm_id": alarm_id, "at": a.at, "action": "escalated", "actor": ACTOR,
                                     "note": f"level {a.level}", "detail": a.value})
                events.append(("alarm", {"action": "escalated", "alarm": {"id": alarm_id, "type": a.code,
                                                                            "level": a.level, "layer": a.ref[0],
                                                                            "feature_id": a.ref[1]}}))
            elif isinstance(a, Clear):
                alarm_id = a.alarm_id or raised.get((a.ref, a.code))
                if alarm_id is None:
                    continue
                if a.final:
                    self.db.update_alarm(conn, alarm_id, {"state": "cleared", "condition_cleared_at": a.at,
                                                          "closed_at": a.at, "closed_by": ACTOR})
                    action = "cleared"
                else:
                    self.db.update_alarm(conn, alarm_id, {"condition_cleared_at": a.at})
                    action = "condition_cleared"
                alarm_events.append({"alarm_id": alarm_id, "at": a.at, "action": action, "actor": ACTOR,
                                     "note": a.reason})
                events.append(("alarm", {"action": action, "alarm": {"id": alarm_id, "type": a.code,
                                                                       "layer": a.ref[0], "feature_id": a.ref[1]},
                                         "reason": a.reason}))
        self.db.add_events(conn, alarm_events)
        return events

    def _write_back(self, conn, touched: dict, latest: dict) -> tuple[list[tuple[str, dict]], list]:
        """State changes go through the Store writer (version, history, tile invalidation);
        readings that change no state only refresh the live last_* columns."""
        from geoapi.storage.writer import Writer

        events = []
        silent: dict[str, list[dict]] = {}
        writer = None
        for ref, device in touched.items():
            state = self.engine.asset_state(device)
            live = {k: v for k, v in latest.get(ref, {}).items() if not k.startswith("_")}
            changed = {k: v for k, v in state.items() if device.props.get(k) != v}
            if changed:
                writer = writer or Writer(self.store, conn, actor=ACTOR, batch_id=None)
                try:
                    writer.patch(device.layer, device.fid, {**live, **state})
                except ConflictError:
                    log.warning("could not write state of %s/%s", *ref)
                    continue
                device.props.update(state)
                events.append(("status", {"layer": device.layer, "id": device.fid, "device_key": device.key,
                                          **state, "changed": sorted(changed)}))
            elif live:
                silent.setdefault(device.layer, []).append({"id": device.fid, **live})
            if "last_seen_at" in live:  # the index is refreshed only by versioned writes
                device.props["last_seen_at"] = live["last_seen_at"]
        for layer_id, rows in silent.items():
            self.db.update_live(conn, layer_id, rows, [*LIVE[layer_id].values(), "last_seen_at"])
        return events, (writer.changes() if writer is not None else [])


    def _close(self, alarm_id: int, actor: str, note: str | None, *, resolve: bool) -> dict[str, Any]:
        """Acknowledge or resolve (dispatcher actions); runs on the worker thread."""
        now = dt.datetime.now(dt.UTC)
        changes: list = []
        events: list[tuple[str, dict]] = []
        with self.db.write() as conn, conn.begin():
            alarm = self.db.alarm(alarm_id, conn)
            if alarm["state"] == "resolved":
                raise ConflictError(f"alarm {alarm_id} is already resolved")
            if resolve:
                values = {"state": "resolved", "closed_at": now, "closed_by": actor, "note": note}
                action = "resolved"
            else:
                if alarm["state"] != "open":
                    raise ConflictError(f"alarm {alarm_id} is {alarm['state']}; only open alarms can be acknowledged")
                values = {"state": "acknowledged", "acked_at": now, "acked_by": actor}
                if note:
                    values["note"] = note
                action = "acknowledged"
            self.db.update_alarm(conn, alarm_id, values)
            self.db.add_events(conn, [{"alarm_id": alarm_id, "at": now, "action": action, "actor": actor,
                                       "note": note}])
            alarm.update(values)
            events.append(("alarm", {"action": action, "alarm": _public(alarm)}))
            ref = (alarm["layer"], alarm["feature_id"])
            device = self.devices.get(ref)
            if resolve and device is not None:
                self.engine.closed(ref, alarm["type"], alarm_id)
                state_events, changes = self._write_back(conn, {ref: device}, {})
                events += state_events
        self.store.publish(changes)
        for kind, data in events:
            self.bus.publish(kind, data)
        return _public(alarm)


def _public(alarm: dict[str, Any]) -> dict[str, Any]:
    from geoapi.storage.writer import jsonable

    return jsonable(alarm)
