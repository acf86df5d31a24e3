// 一张图: dashboard counts, 整治 progress, smart covers online/offline, and the live alarm list
// (GET /alarms, pushed by SSE /events). Alarmed assets pulse on the map; a click flies there.
import { api, optional, explain, url, getKey, hasRoute } from '../api.js';
import { el, clear, fmtNumber, fmtTime } from '../ui.js';
import { anchorOf } from '../coords.js';

const LABELS = {
  total: '井盖总数', by_status: '部件状态', status: '部件状态', rectify: '整治进度', by_rectify_status: '整治进度',
  rectify_status: '整治进度', smart_covers: '智慧井盖', online: '在线', offline: '离线', open_alarms: '未处理告警',
  alarms: '告警', defects: '病害', by_defect: '病害', by_district: '按行政区',
};
const STATUS_COLOURS = { 完好: '#2e7d32', 破损: '#e53935', 丢失: '#6a1b9a', 占用: '#f9a825', 正常: '#2e7d32',
  报警: '#e53935', 离线: '#78909c', 维修: '#f9a825' };
const REFRESH_MS = 30000;

let root, app, markers = [], alarms = [], reloadTimer = null;

export function init(a, node) {
  app = a; root = node;
  clear(root,
    el('h2', {}, '窨井盖概况'), el('div#dash', {}, '加载中…'),
    el('h2', {}, '实时告警 ', el('span#alarm-count.pill', {}, '…')),
    el('div.muted', { style: 'font-size:12px' }, '点击告警定位到设备；新告警自动出现。'),
    el('ul#alarm-list.alarm-list', {}));
  loadDashboard();
  loadAlarms();
  listen();
  setInterval(loadDashboard, REFRESH_MS);
  window.addEventListener('geoapi:tiles-changed', () => scheduleReload());
}

async function loadDashboard() {
  const box = document.getElementById('dash');
  try {
    const dash = await optional('/dashboard/manholes');
    clear(box, dash ? renderDashboard(dash) : await fallbackDashboard());
  } catch (e) {
    clear(box, el('div.error', {}, `概况加载失败：${explain(e)}`));
  }
}

/** GET /dashboard/manholes (geoapi/storage/telemetry_store.py): manholes, smart_covers, open_alarms. */
function renderDashboard(d) {
  if (d.manholes || d.smart_covers || d.open_alarms) return renderKnown(d);
  const cards = [], blocks = [];
  for (const [k, v] of Object.entries(d)) {
    if (typeof v === 'number') cards.push(card(LABELS[k] || k, v));
    else if (v && typeof v === 'object' && !Array.isArray(v)) {
      const nums = Object.entries(v).filter(([, x]) => typeof x === 'number');
      if (nums.length) blocks.push(breakdown(LABELS[k] || k, nums));
    }
  }
  return [el('div.cards', {}, cards), blocks];
}

function renderKnown(d) {
  const m = d.manholes || {}, sc = d.smart_covers || {}, al = d.open_alarms || {};
  const byStatus = Object.entries(m.by_status || {});
  const ok = (m.by_status || {})['完好'] || 0;
  const online = (sc.by_online_state || {});
  const out = [el('div.cards', {},
    card('井盖总数', m.total ?? 0), card('异常井盖', (m.total ?? 0) - ok),
    card('智慧井盖', sc.total ?? 0), card('未处理告警', al.total ?? 0))];
  if (byStatus.length) out.push(breakdown('部件状态', byStatus));
  const defects = Object.entries(m.defects || {}).slice(0, 8);
  if (defects.length) out.push(breakdown('病害（前 8 类）', defects));
  const rect = {};
  for (const y of m.rectify_by_year || []) {
    if (y.by_status) for (const [k, v] of Object.entries(y.by_status)) rect[k] = (rect[k] || 0) + v;
  }
  if (Object.keys(rect).length) out.push(breakdown('整治进度', Object.entries(rect)));
  if (Object.keys(online).length) out.push(breakdown('智慧井盖在线', Object.entries(online)));
  if (Object.keys(sc.by_status || {}).length) out.push(breakdown('智慧井盖状态', Object.entries(sc.by_status)));
  if ((al.by_type || []).length) out.push(breakdown('告警类型', al.by_type.map((t) => [`${t.type}（${t.level}）`, t.count])));
  return out;
}

/** Without /dashboard/manholes: counts by status from the items endpoint's numberMatched. */
async function fallbackDashboard() {
  const count = async (layer, params) => {
    const r = await api(`/collections/${layer}/items`, { params: { ...params, limit: 1 } });
    return r.numberMatched ?? r.features.length;
  };
  const manholes = app.layerById.manholes, covers = app.layerById.smart_covers;
  const out = [];
  if (manholes) {
    const total = await count('manholes', {});
    const byStatus = await Promise.all(manholes.status.values.map(async (s) => [s, await count('manholes', { status: s })]));
    const rectField = manholes.fields.find((f) => f.name === 'rectify_status');
    const rect = rectField ? await Promise.all(rectField.values.map(async (s) => [s, await count('manholes', { rectify_status: s })])) : [];
    out.push(el('div.cards', {}, card('井盖总数', total), card('异常（非完好）', total - (byStatus[0]?.[1] || 0))));
    out.push(breakdown('部件状态', byStatus), rect.length ? breakdown('整治进度', rect) : null);
  }
  if (covers) {
    const byStatus = await Promise.all(covers.status.values.map(async (s) => [s, await count('smart_covers', { status: s })]));
    out.push(breakdown('智慧井盖', byStatus));
  }
  return out;
}

function card(label, value) {
  return el('div.card', {}, el('div.label', {}, label), el('div.value', {}, fmtNumber(value)));
}

function breakdown(title, pairs) {
  const total = pairs.reduce((s, [, n]) => s + n, 0) || 1;
  return el('div', {},
    el('h3', {}, title),
    el('div.bar', {}, pairs.map(([k, n]) => el('span', { title: `${k} ${n}`,
      style: `width:${(100 * n) / total}%;background:${STATUS_COLOURS[k] || colourOf(k)}` }))),
    el('div.legend-values', { style: 'margin-left:0' },
      pairs.map(([k, n]) => el('span', {}, el('span.swatch', { style: `background:${STATUS_COLOURS[k] || colourOf(k)}` }), `${k} ${fmtNumber(n)}`))));
}

function colourOf(k) {
  const palette = ['#1565c0', '#00897b', '#7cb342', '#fb8c00', '#8e24aa', '#5d4037', '#546e7a'];
  let h = 0; for (const c of k) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return palette[h % palette.length];
}

// -- alarms --------------------------------------------------------------------------------
async function loadAlarms() {
  const list = document.getElementById('alarm-list');
  try {
    let doc = await optional('/alarms', { params: { state: 'active', limit: 200 } });
    if (doc) {
      alarms = (Array.isArray(doc) ? doc : doc.alarms || doc.items || doc.features || []).map(normaliseAlarm);
      await locate(alarms);
    } else {
      alarms = await fallbackAlarms();
    }
  } catch (e) {
    clear(list, el('li', {}, `告警加载失败：${explain(e)}`));
    return;
  }
  document.getElementById('alarm-count').textContent = String(alarms.length);
  clear(list, alarms.length ? alarms.map(alarmItem) : el('div.muted', {}, '当前无未处理告警'));
  drawMarkers();
}

/** Without /alarms: smart covers whose device status is 报警 stand in for open alarms. */
async function fallbackAlarms() {
  if (!app.layerById.smart_covers) return [];
  const r = await api('/collections/smart_covers/items', { params: { status: '报警', limit: 200 } });
  return r.features.map((f) => ({ id: `sc-${f.id}`, name: '设备报警', level: '报警', layer: 'smart_covers',
    asset_id: f.id, coord: anchorOf(f.geometry), at: f.properties.updated_at,
    where: f.properties.device_sn || f.properties.obj_code || `#${f.id}`, fallback: true }));
}

const TYPE_NAMES = { COVER_TILT_WARN: '井盖倾斜预警', COVER_OPEN: '井盖开启/翻转', COVER_LOOSE: '井盖松动', COVER_DISPLACED: '井盖位移',
  COVER_VIBRATION: '强震动', COVER_TAMPER: '终端拆卸', COVER_MISSING_INFERRED: '疑似井盖缺失', WELL_WATER_HIGH: '井下水位高',
  WELL_WATER_FULL: '井下满溢', GAS_LEL_1: '可燃气体一级', GAS_LEL_2: '可燃气体二级', GAS_H2S: '硫化氢', SMOKE: '烟感',
  TEMP_HIGH: '高温', BATTERY_LOW: '低电量', BATTERY_CRITICAL: '超低电量', SIGNAL_WEAK: '信号弱', DEVICE_OFFLINE: '设备离线',
  PONDING_START: '开始积水', PONDING_WARN: '积水预警', PONDING_CLOSE: '积水封闭', PONDING_SEVERE: '严重积水',
  PONDING_RISE_FAST: '水位快速上涨', PONDING_LONG: '长时间积水', GAUGE_OFFLINE: '水位计离线', GAUGE_FAULT: '水位计故障' };
const coordCache = new Map();

/** Alarms name their asset (layer, feature_id); the map needs its position. */
async function locate(list) {
  const todo = list.filter((a) => !a.coord && a.asset_id !== undefined && a.asset_id !== null).slice(0, 100);
  await Promise.all(todo.map(async (a) => {
    const key = `${a.layer}/${a.asset_id}`;
    if (!coordCache.has(key)) {
      try {
        const f = await api(`/collections/${a.layer}/items/${a.asset_id}`);
        coordCache.set(key, { coord: anchorOf(f.geometry), where: f.properties.device_sn || f.properties.name || f.properties.obj_code });
      } catch { coordCache.set(key, { coord: null }); }
    }
    const c = coordCache.get(key);
    a.coord = c.coord; a.where = a.where || c.where || '';
  }));
}

function normaliseAlarm(a) {
  const p = a.properties || a;
  const coord = a.geometry ? anchorOf(a.geometry)
    : (p.lon !== undefined ? [p.lon, p.lat] : p.location?.coordinates || p.coordinates || null);
  return {
    id: a.id ?? p.id, name: TYPE_NAMES[p.type] || p.message || p.name || p.title || p.type || '告警', code: p.type,
    message: p.message, state: p.state,
    level: p.level || p.severity || '报警', layer: p.layer || p.asset_layer || 'smart_covers',
    asset_id: p.asset_id ?? p.feature_id ?? p.device_id ?? p.fid, coord,
    at: p.raised_at || p.at || p.time || p.created_at, where: p.device_sn || p.asset_code || p.obj_code || p.address || '',
  };
}

function alarmItem(a) {
  return el(a.level === '预警' || a.level === '提示' ? 'li.warn' : 'li', {
    'data-alarm': a.id, onclick: () => focusAlarm(a) },
  el('span.when', {}, fmtTime(a.at)), el('b', {}, `【${a.level}】${a.name}`),
  el('div', {}, [a.where, a.state === 'acknowledged' ? '（已确认）' : '', a.message && a.message !== a.name ? ` ${a.message}` : ''].join('')));
}

function focusAlarm(a) {
  if (a.coord) app.flyTo(a.coord, 17);
  if (a.layer && a.asset_id !== undefined && a.asset_id !== null) app.openArchive(a.layer, a.asset_id);
}

function drawMarkers() {
  markers.forEach((m) => m.remove());
  markers = alarms.filter((a) => a.coord).map((a) => {
    const node = el(a.level === '预警' ? 'div.alarm-marker.warn' : 'div.alarm-marker', { title: `${a.level} ${a.name} ${a.where}` });
    node.addEventListener('click', (e) => { e.stopPropagation(); focusAlarm(a); });
    return new app.maplibregl.Marker({ element: node }).setLngLat(a.coord).addTo(app.map);
  });
}

function scheduleReload() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => { loadAlarms(); loadDashboard(); }, 800);
}

/** SSE /events (docs/telemetry.md): alarms and tile-change notices. Falls back to polling. */
function listen() {
  let source;
  if (!hasRoute('/events')) { setInterval(loadAlarms, REFRESH_MS); return; }
  try {
    const u = getKey() ? url('/events', { key: getKey() }) : url('/events');
    source = new EventSource(u);
  } catch { source = null; }
  if (!source) { setInterval(loadAlarms, REFRESH_MS); return; }
  let opened = false;
  source.onopen = () => { opened = true; };
  const onAlarm = () => scheduleReload();
  for (const name of ['alarm', 'alarm.raised', 'alarm.cleared', 'alarm.updated', 'status']) source.addEventListener(name, onAlarm);
  const onTiles = (e) => {
    try {
      const data = JSON.parse(e.data);
      const changes = Array.isArray(data) ? data : data.changes || [data];
      if (changes.some((c) => c.bbox || c.tiles)) app.applyTileChanges?.(changes);
    } catch { /* not a tile notice */ }
  };
  source.addEventListener('tiles', onTiles);
  source.addEventListener('tiles.changed', onTiles);
  source.onmessage = (e) => { if (/alarm/.test(e.data)) scheduleReload(); };
  source.onerror = () => {
    // A missing /events (404) never opens: stop retrying and poll the alarm list instead.
    if (!opened) { source.close(); setInterval(loadAlarms, REFRESH_MS); }
  };
}
