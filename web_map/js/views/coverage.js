// 规划: coverage of a layer by district / unit grid / road segment as a choropleth with a legend,
// the uncovered area for a service radius, and the table with a CSV download (GET /coverage).
import { api, optional, explain, url, authHeaders, hasRoute } from '../api.js';
import { el, clear, fmtNumber, table, toCsv, downloadText } from '../ui.js';
import { bboxOf } from '../coords.js';

const UNITS = [['district', '行政区', 'districts'], ['unit_grid', '单元网格', 'unit_grids'], ['road_segment', '路长制路段', 'road_segments']];
// Service radii from DOMAIN.md §6 (公厕 300 m in the centre); others are a planner's choice.
const RADII = { toilets: 300, transfer_stations: 1000, manholes: 50, smart_covers: 500, heat_stations: 1000 };
const METRIC_LABELS = {
  count: '数量', density_per_km2: '密度（个/km²）', density_km2: '密度（个/km²）', length_km: '长度（km）',
  km_per_km2: '线密度（km/km²）', covered_share: '服务半径覆盖率', covered_pct: '服务半径覆盖率（%）',
  coverage_pct: '覆盖率（%）', smart_share: '智慧井盖占比', share_smart: '智慧井盖占比', area_km2: '面积（km²）',
  uncovered_km2: '未覆盖面积（km²）', covered_km2: '覆盖面积（km²）',
};
const RAMP = ['#fff5eb', '#fdd0a2', '#fdae6b', '#fd8d3c', '#e6550d', '#a63603'];

let root, app, last = null;

export function init(a, node) {
  app = a; root = node;
  const layers = app.layers.filter((l) => !['districts', 'unit_grids'].includes(l.id));
  const layerSel = el('select#coverage-layer', { onchange: () => { radius.value = RADII[layerSel.value] || ''; } },
    layers.map((l) => el('option', { value: l.id, selected: l.id === 'toilets' }, l.title)));
  const unitSel = el('select#coverage-unit', {}, UNITS.filter(([, , lid]) => app.layerById[lid])
    .map(([v, label]) => el('option', { value: v }, label)));
  const radius = el('input#coverage-radius', { type: 'number', min: 0, step: 50, value: RADII[layerSel.value] || '', style: 'width:6em' });
  clear(root,
    el('h2', {}, '覆盖率分析'),
    el('div.row', {}, el('label', {}, '图层 ', layerSel), el('label', {}, '统计单元 ', unitSel)),
    el('div.row', {}, el('label', {}, '服务半径(米) ', radius), el('span.muted', {}, '公厕建议 300 米')),
    el('div.row', {}, el('button.primary#coverage-go', { onclick: run }, '分析'),
      el('button#coverage-csv', { onclick: csv }, '下载 CSV'), el('button', { onclick: reset }, '清除')),
    el('div#coverage-note'), el('div#coverage-metric-box.row'), el('div#coverage-legend'), el('div#coverage-table'));

  app.map.addSource('coverage', { type: 'geojson', data: empty() });
  const before = app.map.getStyle().layers.find((l) => l.type === 'circle' || l.type === 'symbol')?.id;
  app.map.addLayer({ id: 'coverage-fill', type: 'fill', source: 'coverage', filter: ['!=', ['get', 'kind'], 'uncovered'],
    paint: { 'fill-color': '#ccc', 'fill-opacity': 0.7 } }, before);
  app.map.addLayer({ id: 'coverage-outline', type: 'line', source: 'coverage', filter: ['!=', ['get', 'kind'], 'uncovered'],
    paint: { 'line-color': '#5d4037', 'line-width': 1 } }, before);
  app.map.addLayer({ id: 'coverage-uncovered', type: 'fill', source: 'coverage', filter: ['==', ['get', 'kind'], 'uncovered'],
    paint: { 'fill-color': '#d32f2f', 'fill-opacity': 0.35, 'fill-outline-color': '#b71c1c' } }, before);
}

const OWN = ['coverage-fill', 'coverage-outline', 'coverage-uncovered'];
export function activate() { OWN.forEach((id) => app.map.setLayoutProperty(id, 'visibility', 'visible')); }
export function deactivate() { OWN.forEach((id) => app.map.setLayoutProperty(id, 'visibility', 'none')); }

function empty() { return { type: 'FeatureCollection', features: [] }; }

function params() {
  return { layer: document.getElementById('coverage-layer').value, by: document.getElementById('coverage-unit').value,
    radius_m: document.getElementById('coverage-radius').value || undefined };
}

function reset() {
  app.map.getSource('coverage').setData(empty());
  ['coverage-note', 'coverage-metric-box', 'coverage-legend', 'coverage-table'].forEach((id) => clear(document.getElementById(id)));
  last = null;
}

async function run() {
  const p = params();
  const note = document.getElementById('coverage-note');
  clear(note, el('p.muted', {}, '计算中…'));
  let units, uncovered = [];
  try {
    const doc = await optional('/coverage', { params: { ...p, format: 'geojson' } });
    if (doc) {
      const feats = doc.features || [];
      units = [];
      for (const f of feats) {
        if (!f.geometry) continue;
        // The uncovered part of each unit comes as a geometry property (docs/queries.md).
        const { uncovered: gap, by_status: byStatus, ...props } = f.properties || {};
        for (const [k, v] of Object.entries(byStatus || {})) props[`status_${k}`] = v;
        if (gap) uncovered.push({ type: 'Feature', properties: { code: props.code }, geometry: gap });
        units.push({ ...f, properties: props });
      }
      const extra = doc.uncovered || doc.uncovered_geometry;
      if (extra) uncovered.push(extra.type === 'Feature' ? extra : { type: 'Feature', properties: {}, geometry: extra });
      clear(note);
    } else {
      units = await fallback(p);
      clear(note, el('div.notice', {}, '覆盖率服务未启用：仅按行政区统计数量与密度（浏览器内计算），无服务半径分析。'));
    }
  } catch (e) {
    clear(note, el('div.error', {}, `分析失败：${explain(e)}`));
    return;
  }
  uncovered = uncovered.map((f) => ({ ...f, properties: { ...(f.properties || {}), kind: 'uncovered' } }));
  last = { units, uncovered, p };
  const metrics = numericKeys(units);
  const metric = pickMetric(units, p.radius_m);
  clear(document.getElementById('coverage-metric-box'), el('label', {}, '着色指标 ',
    el('select#coverage-metric', { onchange: (e) => paint(e.target.value) },
      metrics.map((m) => el('option', { value: m, selected: m === metric }, METRIC_LABELS[m] || NAMES[m] || m)))));
  paint(metric);
  renderTable(units);
  if (units.length) {
    const boxes = units.map((f) => bboxOf(f.geometry));
    app.map.fitBounds([[Math.min(...boxes.map((b) => b[0])), Math.min(...boxes.map((b) => b[1]))],
      [Math.max(...boxes.map((b) => b[2])), Math.max(...boxes.map((b) => b[3]))]], { padding: 30, duration: 500 });
  }
  window.dispatchEvent(new CustomEvent('geoapi:coverage', { detail: { metric, count: units.length } }));
}

/** Without /coverage: per-district counts from the items endpoint and density from the area. */
async function fallback(p) {
  const d = await api('/collections/districts/items', { params: { limit: 500 } });
  return Promise.all(d.features.map(async (f) => {
    const r = await api(`/collections/${p.layer}/items`, { params: { admin_code: f.properties.admin_code, limit: 1 } });
    const count = r.numberMatched ?? r.features.length;
    const area = Number(f.properties.area_km2) || null;
    return { type: 'Feature', geometry: f.geometry, properties: { code: f.properties.admin_code, name: f.properties.name,
      count, area_km2: area, density_per_km2: area ? count / area : null } };
  }));
}

/** Colour the units by ``metric`` in quantile classes. */
function paint(metric) {
  const { units, uncovered } = last;
  const values = units.map((f) => Number(f.properties[metric])).filter(Number.isFinite);
  const breaks = quantiles(values);
  const colour = (v) => RAMP[Math.min(RAMP.length - 1, breaks.filter((b) => v > b).length)];
  const styled = units.map((f) => ({ ...f, properties: { ...f.properties, _colour: colour(Number(f.properties[metric]) || 0) } }));
  app.map.getSource('coverage').setData({ type: 'FeatureCollection', features: [...styled, ...uncovered] });
  app.map.setPaintProperty('coverage-fill', 'fill-color', ['get', '_colour']);
  last.metric = metric;
  legend(metric, breaks, uncovered.length);
}

function numericKeys(units) {
  const keys = new Set();
  for (const f of units) for (const [k, v] of Object.entries(f.properties)) if (typeof v === 'number' && !k.startsWith('_')) keys.add(k);
  return [...keys];
}

/** The service-radius share when a radius was asked for, else density, else the count. */
function pickMetric(units, radius) {
  const keys = numericKeys(units);
  const order = radius ? ['covered_share', 'covered_pct', 'coverage_pct'] : [];
  for (const m of [...order, 'density_per_km2', 'density_km2', 'km_per_km2', 'count']) if (keys.includes(m)) return m;
  return keys[0] || 'count';
}

function quantiles(values) {
  if (!values.length) return [];
  const s = [...values].sort((a, b) => a - b);
  const out = [];
  for (let i = 1; i < RAMP.length; i++) out.push(s[Math.floor((i * (s.length - 1)) / RAMP.length)]);
  return [...new Set(out)];
}

function legend(metric, breaks, uncoveredCount) {
  const box = document.getElementById('coverage-legend');
  const fmt = (v) => (metric.endsWith('share') ? `${(v * 100).toFixed(1)}%` : fmtNumber(v, 1));
  const items = [`≤ ${fmt(breaks[0] ?? 0)}`, ...breaks.map((b, i) => (i + 1 < breaks.length ? `${fmt(b)} – ${fmt(breaks[i + 1])}` : `> ${fmt(b)}`))];
  clear(box, el('h3', {}, `图例：${METRIC_LABELS[metric] || metric}`),
    el('div.legend-values', { style: 'margin-left:0' }, items.map((t, i) => el('span', {}, el('span.swatch.fill', { style: `background:${RAMP[i]}` }), t)),
      uncoveredCount ? el('span', {}, el('span.swatch.fill', { style: 'background:#d32f2f99' }), '服务半径未覆盖') : null));
}

function columns(units) {
  const keys = [];
  for (const f of units) for (const k of Object.keys(f.properties)) if (!k.startsWith('_') && !keys.includes(k) && k !== 'kind') keys.push(k);
  return keys.filter((k) => !(units[0]?.properties[k] && typeof units[0].properties[k] === 'object'));
}

const NAMES = { code: '编码', name: '名称', features: '要素数', asset_area_km2: '部件面积（km²）', unit_length_km: '单元道路长度（km）',
  density_per_km: '线密度（个/km）', admin_code: '区划代码', grid_code: '网格编码', segment_code: '路段编号', unit: '单元', unit_code: '单元编码', unit_name: '单元名称' };

function renderTable(units) {
  const keys = columns(units);
  const numeric = keys.map((k, i) => (typeof units[0]?.properties[k] === 'number' ? i : -1)).filter((i) => i >= 0);
  const t = table(keys.map((k) => METRIC_LABELS[k] || NAMES[k] || (k.startsWith('status_') ? `状态·${k.slice(7)}` : k)),
    units.map((f) => keys.map((k) => {
      const v = f.properties[k];
      if (typeof v !== 'number') return v ?? '—';
      return k.endsWith('share') ? `${(v * 100).toFixed(1)}%` : fmtNumber(v, 3);
    })),
    { numeric, onRowClick: (i) => { const b = bboxOf(units[i].geometry); app.map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 40 }); } });
  t.id = 'coverage-table-grid';
  clear(document.getElementById('coverage-table'), el('h3', {}, `统计表（${units.length} 个单元）`), el('div.scroll-x', {}, t));
}

async function csv() {
  const p = params();
  const name = `覆盖率_${p.layer}_${p.by}.csv`;
  try {
    if (hasRoute('/coverage')) {
      const res = await fetch(url('/coverage', { ...p, format: 'csv' }), { headers: authHeaders() });
      if (res.ok) { downloadText(name, (await res.text()).replace(/^\ufeff/, '')); return; }
    }
  } catch { /* build it from the table below */ }
  if (!last) { await run(); }
  if (!last) return;
  const keys = columns(last.units);
  downloadText(name, toCsv(keys, last.units.map((f) => keys.map((k) => f.properties[k]))));
}
