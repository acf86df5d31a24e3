"""The rules engine: per-device rule states in memory, readings and clock ticks in, alarm
actions out. Single-threaded by design (the ingest worker owns it); no I/O here."""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from geoapi.telemetry.devices import Device
from geoapi.telemetry.model import Reading
from geoapi.telemetry.rules import LEVEL_ORDER, MISSING, OFFLINE, RULES, Ctx, Rule, device_thresholds

Ref = tuple[str, int]


@dataclass
class RuleState:
    phase: str = "idle"                      # idle | pending | active
    since_ts: dt.datetime | None = None      # pending: device time of the first true sample
    since_wall: dt.datetime | None = None    # pending: our time of that sample
    count: int = 0                           # pending: consecutive true samples
    alarm_id: int | None = None
    level: str = ""
    raised_wall: dt.datetime | None = None
    clear_ts: dt.datetime | None = None      # active: clear condition holding since (device time)
    clear_wall: dt.datetime | None = None
    condition_cleared: bool = False          # manual alarm whose condition has gone

    def reset(self) -> None:
        self.__init__()


@dataclass
class Runtime:
    rules: dict[str, RuleState] = field(default_factory=dict)
    last_ts: dt.datetime | None = None       # newest device time evaluated (ordering)
    last_seen: dt.datetime | None = None     # our receive time of the newest message
    spikes: deque = field(default_factory=deque)   # device times of tilt spikes
    depths: deque = field(default_factory=deque)   # (device time, depth cm)
    flat_value: float | None = None          # the wet depth repeated flat_count times running
    flat_count: int = 0
    latest: dict[str, Any] = field(default_factory=dict)

    def state(self, code: str) -> RuleState:
        return self.rules.setdefault(code, RuleState())

    def active(self) -> dict[str, RuleState]:
        return {c: s for c, s in self.rules.items() if s.phase == "active"}


@dataclass
class Raise:
    ref: Ref
    code: str
    level: str
    at: dt.datetime
    value: dict[str, Any]
    state: RuleState        # gets alarm_id once stored


@dataclass
class Clear:
    ref: Ref
    code: str
    alarm_id: int | None
    at: dt.datetime
    reason: str
    final: bool = True      # False: a manual alarm's condition has gone; it stays open


@dataclass
class Escalate:
    """An active alarm whose reading crossed its rule's higher line (GAS_H2S 预警 → 报警)."""

    ref: Ref
    code: str
    alarm_id: int | None
    level: str
    at: dt.datetime
    value: dict[str, Any]


Action = Raise | Clear | Escalate


class RulesEngine:
    def __init__(self, thresholds: dict[str, dict[str, float]]):
        self.thresholds = thresholds
        self.runtime: dict[Ref, Runtime] = {}

    def rt(self, ref: Ref) -> Runtime:
        return self.runtime.setdefault(ref, Runtime())

    def th(self, device: Device) -> dict[str, float]:
        return device_thresholds(self.thresholds.get(device.layer, {}), device.layer, device.props)

    # -- messages ---------------------------------------------------------------------------
    def evaluate(self, device: Device, r: Reading) -> tuple[list[Action], bool]:
        """Actions for one reading, and whether it arrived out of order (then only stored)."""
        rt = self.rt(device.ref)
        out: list[Action] = []
        if rt.last_seen is None or r.received_at > rt.last_seen:
            rt.last_seen = r.received_at
        off = OFFLINE[device.layer][0]
        if r.online is False:
            out += self._raise_now(device, rt, off, OFFLINE[device.layer][2], r.received_at,
                                   {"reason": f"{r.source} reports the device offline"})
        elif rt.state(off).phase == "active":
            out += self._clear(device, rt, off, r.received_at, "message received")
        if rt.last_ts is not None and r.ts < rt.last_ts:
            return out, True
        rt.last_ts = r.ts
        if r.online is not None and not r.values and not r.flags:
            return out, False
        rt.latest.update(r.values)
        th = self.th(device)
        ctx = Ctx(values=r.values, flags=r.flags, th=th)
        if device.layer == "waterlogging_points":
            ctx.rise_cm = self._rise(rt, r, ctx, th)
            ctx.flat = self._flat(rt, ctx, th)
        suppressed = device.props.get("fortify_state") == "撤防"
        ctx.spikes = self._spikes(rt, r.ts, th)
        spiked = False
        for rule in RULES.get(device.layer, ()):
            actions, spike = self._step(device, rt, rule, ctx, r, suppressed)
            out += actions
            if spike and not spiked:
                spiked = True
                rt.spikes.append(r.ts)
                ctx.spikes = self._spikes(rt, r.ts, th)
        return out, False

    def _step(self, device: Device, rt: Runtime, rule: Rule, ctx: Ctx, r: Reading,
              suppressed: bool) -> tuple[list[Action], bool]:
        st = rt.state(rule.code)
        raise_c = rule.when(ctx)
        if st.phase != "active":
            if suppressed and rule.suppressible:
                st.reset()
                return [], False
            level = rule.level_for(ctx)
            if raise_c is True and rule.immediate is not None and rule.immediate(ctx) is True:
                return self._raise_now(device, rt, rule.code, level, r.received_at, self._value(r)), False
            if raise_c is True:
                if st.phase == "idle":
                    st.phase, st.since_ts, st.since_wall, st.count = "pending", r.ts, r.received_at, 0
                st.count += 1
                need = rule.sample_count(ctx.th)
                # a rule counted in samples only (SIGNAL_WEAK) has no time debounce to satisfy
                held = rule.debounce is not None and \
                    (r.ts - st.since_ts).total_seconds() >= rule.seconds(rule.debounce, ctx.th)
                if held or (need > 1 and st.count >= need):
                    return self._raise_now(device, rt, rule.code, level, r.received_at, self._value(r)), False
                return [], False
            if raise_c is False and st.phase == "pending":
                st.reset()
                return [], rule.counts_spikes  # fell back before the debounce: a spike, not an alarm
            return [], False
        # active
        if rule.escalate_level and st.level != rule.escalate_level and rule.level_for(ctx) == rule.escalate_level:
            st.level = rule.escalate_level
            st.clear_ts = st.clear_wall = None
            return [Escalate(device.ref, rule.code, st.alarm_id, st.level, r.received_at, self._value(r))], False
        if rule.clear_now is not None and rule.clear_now(ctx) is True:
            return self._clear(device, rt, rule.code, r.received_at, "reset reported", manual=rule.manual), False
        clear_c = rule.clear(ctx) if rule.clear is not None else None
        if clear_c is True:
            if st.clear_ts is None:
                st.clear_ts, st.clear_wall = r.ts, r.received_at
            if (r.ts - st.clear_ts).total_seconds() >= rule.seconds(rule.clear_hold, ctx.th):
                return self._clear(device, rt, rule.code, r.received_at, "condition cleared", manual=rule.manual), False
        elif clear_c is False or raise_c is True:
            st.clear_ts = st.clear_wall = None
        return [], False

    @staticmethod
    def _value(r: Reading) -> dict[str, Any]:
        return {**r.values, **{k: v for k, v in r.flags.items() if v}, "ts": r.ts.isoformat(), "msg_id": r.msg_id}

    def _spikes(self, rt: Runtime, now: dt.datetime, th: dict[str, float]) -> int:
        window = dt.timedelta(seconds=th.get("loose_window_s", 600))
        while rt.spikes and now - rt.spikes[0] > window:
            rt.spikes.popleft()
        return len(rt.spikes)

    def _rise(self, rt: Runtime, r: Reading, ctx: Ctx, th: dict[str, float]) -> float | None:
        depth = ctx.depth()
        if depth is None:
            return None
        window = dt.timedelta(seconds=th.get("rise_window_s", 600))
        rt.depths.append((r.ts, depth))
        while rt.depths and r.ts - rt.depths[0][0] > window:
            rt.depths.popleft()
        return depth - min(d for _, d in rt.depths)

    def _flat(self, rt: Runtime, ctx: Ctx, th: dict[str, float]) -> int:
        """How many wet readings running have repeated the same depth (a stuck gauge)."""
        depth = ctx.raw_depth()
        if depth is None:
            return 0
        if depth < th.get("flat_min_cm", 1):
            rt.flat_value, rt.flat_count = None, 0
        elif rt.flat_value is not None and abs(depth - rt.flat_value) <= th.get("flat_tolerance_cm", 0):
            rt.flat_count += 1
        else:
            rt.flat_value, rt.flat_count = depth, 1
        return rt.flat_count

    def _raise_now(self, device: Device, rt: Runtime, code: str, level: str, at: dt.datetime,
                   value: dict[str, Any]) -> list[Action]:
        st = rt.state(code)
        if st.phase == "active":
            return []
        st.phase, st.level, st.raised_wall, st.alarm_id = "active", level, at, None
        st.clear_ts = st.clear_wall = None
        st.condition_cleared = False
        return [Raise(device.ref, code, level, at, value, st)]

    def _clear(self, device: Device, rt: Runtime, code: str, at: dt.datetime, reason: str,
               manual: bool = False) -> list[Action]:
        st = rt.state(code)
        if manual:  # the condition has gone; the alarm waits for a dispatcher (logged once)
            st.clear_ts = st.clear_wall = None
            if st.condition_cleared:
                return []
            st.condition_cleared = True
            return [Clear(device.ref, code, st.alarm_id, at, reason, final=False)]
        alarm_id = st.alarm_id
        st.reset()
        return [Clear(device.ref, code, alarm_id, at, reason)]

    # -- the clock ------------------------------------------------------------------------------
    def tick(self, devices: list[Device], now: dt.datetime) -> list[Action]:
        """Debounces and clear holds that elapsed without a new message, offline devices, expiry."""
        out: list[Action] = []
        for device in devices:
            rt = self.runtime.get(device.ref)
            th = self.th(device)
            out += self._offline(device, rt, th, now)
            if rt is None:
                continue
            rules = {r.code: r for r in RULES.get(device.layer, ())}
            suppressed = device.props.get("fortify_state") == "撤防"
            for code, st in list(rt.rules.items()):
                rule = rules.get(code)
                if rule is None:
                    continue
                if st.phase == "pending" and rule.debounce and not (suppressed and rule.suppressible):
                    if (now - st.since_wall).total_seconds() >= rule.seconds(rule.debounce, th):
                        out += self._raise_now(device, rt, code, rule.level, now, {**rt.latest, "by": "debounce"})
                elif st.phase == "active":
                    if st.clear_wall is not None and rule.clear_hold and \
                            (now - st.clear_wall).total_seconds() >= rule.seconds(rule.clear_hold, th):
                        out += self._clear(device, rt, code, now, "condition cleared", manual=rule.manual)
                    elif rule.expires and st.raised_wall is not None and \
                            (now - st.raised_wall).total_seconds() >= rule.seconds(rule.expires, th):
                        out += self._clear(device, rt, code, now, "expired")
            opened = rt.rules.get("COVER_OPEN")
            if opened is not None and opened.phase == "active" and opened.raised_wall is not None and not suppressed \
                    and (now - opened.raised_wall).total_seconds() >= th.get("missing_after_s", 1800):
                out += self._raise_now(device, rt, MISSING[0], MISSING[2], now,
                                       {"reason": "COVER_OPEN has lasted too long", "since": opened.raised_wall.isoformat()})
        return out

    def _offline(self, device: Device, rt: Runtime | None, th: dict[str, float], now: dt.datetime) -> list[Action]:
        last = rt.last_seen if rt is not None and rt.last_seen is not None else device.props.get("last_seen_at")
        if last is None:
            return []  # never heard from: nothing to compare with
        limit = th.get("offline_factor", 2.5) * th.get("heartbeat_s", th.get("default_heartbeat_s", 86400))
        if (now - last).total_seconds() <= limit:
            return []
        rt = rt or self.rt(device.ref)
        code, _, level = OFFLINE[device.layer]
        return self._raise_now(device, rt, code, level, now,
                               {"last_seen_at": last.isoformat(), "limit_s": limit})

    # -- dispatcher actions and recovery -------------------------------------------------------------
    def closed(self, ref: Ref, code: str, alarm_id: int) -> None:
        """A dispatcher resolved the alarm: start over, so a lasting condition raises anew."""
        rt = self.runtime.get(ref)
        if rt is not None and code in rt.rules and rt.rules[code].alarm_id == alarm_id:
            rt.rules[code].reset()

    def restore(self, alarm: dict[str, Any], now: dt.datetime) -> None:
        """Resume an alarm that was open when the process stopped."""
        rt = self.rt((alarm["layer"], alarm["feature_id"]))
        st = rt.state(alarm["type"])
        st.phase, st.alarm_id, st.level = "active", alarm["id"], alarm["level"]
        st.raised_wall = alarm["raised_at"] or now
        st.condition_cleared = alarm.get("condition_cleared_at") is not None

    # -- the state written back to the asset ----------------------------------------------------
    def asset_state(self, device: Device) -> dict[str, Any]:
        rt = self.runtime.get(device.ref)
        active = rt.active() if rt else {}
        if device.layer == "smart_covers":
            offline = OFFLINE["smart_covers"][0] in active
            top = max((LEVEL_ORDER.get(s.level, 0) for c, s in active.items()
                       if c != OFFLINE["smart_covers"][0]), default=0)
            alarm_state = {2: "预警", 3: "报警", 4: "紧急"}.get(top, "正常")
            if device.props.get("status") == "维修" or device.props.get("device_state") == "维修":
                status = "维修"  # set by people; telemetry does not override it
            elif offline:
                status = "离线"
            else:
                status = "报警" if alarm_state != "正常" else "正常"
            state = {"status": status, "alarm_state": alarm_state}
            if offline:
                state["online_state"] = "离线"
            elif rt is not None and rt.last_seen is not None:
                state["online_state"] = "在线"
            return state
        codes = set(active)
        if codes & {"PONDING_CLOSE", "PONDING_SEVERE"}:
            status = "封闭"
        elif codes & {"PONDING_WARN", "PONDING_LONG"}:
            status = "预警"
        elif "PONDING_START" in codes:
            status = "积水"
        else:
            status = "正常"
        return {"status": status}
