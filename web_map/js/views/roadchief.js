// 路长制: road segments coloured by 道路等级, 路长级别 or 路长, their responsibility corridors
// (frontage_m either side) and unit grids; a click shows the 公示牌 card and the segment summary
// (GET /road_segments/{code}/card and /summary, docs in geoapi/api/grids.py).
import { api, optional, explain, hasRoute, url } from '../api.js';
import { el, clear, fmtNumber, fmtValue, colourFor } from '../ui.js';
import { bboxOf } from '../coords.js';

const OWN_LAYERS = ['rc-corridor', 'rc-segments', 'rc-grid-line', 'rc-grid-label'];
const LEVEL_COLOURS = { 总路长: '#b71c1c', 副总路长: '#e65100', 市级路长: '#b71c1c', 区级路长: '#e65100',
  一级路长: '#f9a825', 街道级路长: '#f9a825', 二级路长: '#2e7d32', 社区级路长: '#1565c0', 三级路长: '#1565c0' };
const SUMMARY_LABELS = { segment_code: '路段编号', road_name: '道路名称', length_m: '长度（米）', assets: '部件', counts: '部件数量',
  manholes: '窨井盖', smart_covers: '智慧井盖', toilets: '公厕', open_alarms: '未处理告警', alarms: '告警',
  grids: '途经网格', unit_grids: '途经网格', frontage_m: '责任区宽度（米）', corridor_area_m2: '责任区面积（m²）',
  asset_total: '部件总数', total: '合计', street_code: '街道代码', admin_code: '行政区划代码', by_layer: '按图层', by_status: '按状态' };

let root, app, segments = null;

export function init(a, node) {
  app = a; root = node;
  const mode = el('select#rc-mode', { onchange: () => recolour() },
    el('option', { value: 'grade' }, '按道路等级'), el('option', { value: 'level' }, '按最高路长级别'),
    el('option', { value: 'chief' }, '按路长'));
  clear(root,
    el('h2', {}, '路长制路段'),
    el('div.row', {}, el('label', {}, '着色 ', mode),
      el('label', {}, el('input#rc-corridors', { type: 'checkbox', checked: true, onchange: (e) => corridors(e.target.checked) }), '责任区'),
      el('label', {}, el('input#rc-grids', { type: 'checkbox', checked: true, onchange: (e) => { vis('rc-grid-line', e.target.checked); vis('rc-grid-label', e.target.checked); } }), '单元网格')),
    el('div#rc-legend'),
    el('p.muted', {}, '点击路段查看公示牌与路段汇总。'),
    el('div#rc-card'), el('div#rc-summary'));

  const map = app.map;
  map.addSource('rc', { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
  // Corridor width in pixels = 2 × frontage_m at the map's metres per pixel (Web Mercator at ~35°N).
  const mpp = (z) => (156543.03 * Math.cos((35.2 * Math.PI) / 180)) / 2 ** z;
  map.addLayer({ id: 'rc-corridor', type: 'line', source: 'rc', layout: { visibility: 'none', 'line-cap': 'round' },
    paint: { 'line-color': ['get', '_colour'], 'line-opacity': 0.18,
      'line-width': ['interpolate', ['exponential', 2], ['zoom'], 10, ['/', ['*', 2, ['coalesce', ['get', 'frontage_m'], 30]], mpp(10)],
        20, ['/', ['*', 2, ['coalesce', ['get', 'frontage_m'], 30]], mpp(20)]] } });
  map.addLayer({ id: 'rc-segments', type: 'line', source: 'rc', layout: { visibility: 'none', 'line-cap': 'round' },
    paint: { 'line-color': ['get', '_colour'], 'line-width': 5 } });
  if (app.layerById.unit_grids) {
    map.addLayer({ id: 'rc-grid-line', type: 'line', source: app.source, 'source-layer': 'unit_grids', layout: { visibility: 'none' },
      paint: { 'line-color': '#6a1b9a', 'line-width': 1.2, 'line-dasharray': [3, 2] } });
    map.addLayer({ id: 'rc-grid-label', type: 'symbol', source: app.source, 'source-layer': 'unit_grids', minzoom: 14,
      layout: { visibility: 'none', 'text-field': ['coalesce', ['get', 'grid_code'], ''], 'text-size': 10, 'text-font': ['Noto Sans Regular'] },
      paint: { 'text-color': '#6a1b9a', 'text-halo-color': '#fff', 'text-halo-width': 1 } });
  }
  app.clickHandlers.roadchief = (e) => {
    const box = [[e.point.x - 5, e.point.y - 5], [e.point.x + 5, e.point.y + 5]];
    const hit = map.queryRenderedFeatures(box, { layers: ['rc-segments'] })[0];
    if (!hit) return false;
    show(hit.properties.segment_code);
    return true;
  };
  app.showSegment = async (code) => { app.setTab('roadchief'); await loadSegments(); show(code, true); };
}

/** The road_corridors layer (polygons) when the server has it, else a wide line of frontage_m. */
function corridors(on) {
  const own = app.styleLayersOf('road_corridors');
  if (own.length) { own.forEach((id) => vis(id, on)); vis('rc-corridor', false); } else vis('rc-corridor', on);
}

function vis(id, on) { if (app.map.getLayer(id)) app.map.setLayoutProperty(id, 'visibility', on ? 'visible' : 'none'); }

export async function activate() {
  await loadSegments();
  vis('rc-segments', true);
  corridors(document.getElementById('rc-corridors').checked);
  const grids = document.getElementById('rc-grids').checked;
  vis('rc-grid-line', grids); vis('rc-grid-label', grids);
}

export function deactivate() { OWN_LAYERS.forEach((id) => vis(id, false)); }

async function loadSegments() {
  if (segments) return;
  try {
    const doc = await api('/collections/road_segments/items', { params: { limit: 10000 } });
    segments = doc.features;
  } catch (e) {
    clear(document.getElementById('rc-legend'), el('div.error', {}, `路段加载失败：${explain(e)}`));
    segments = null;
    return;
  }
  recolour();
}

function chiefsOf(p) {
  let c = p.chiefs;
  if (typeof c === 'string') { try { c = JSON.parse(c); } catch { c = []; } }
  return Array.isArray(c) ? c : [];
}

function recolour() {
  if (!segments) return;
  const mode = document.getElementById('rc-mode').value;
  const grades = app.layerById.road_segments?.style?.colors || {};
  const keyOf = (p) => {
    const chiefs = chiefsOf(p);
    if (mode === 'grade') return p.road_grade || '未定';
    if (mode === 'level') return chiefs[0]?.level || '未设路长';
    return chiefs[0]?.name || '未设路长';
  };
  const colourOf = (k) => (mode === 'grade' ? grades[k] : mode === 'level' ? LEVEL_COLOURS[k] : null) || colourFor(k);
  const seen = new Map();
  const feats = segments.map((f) => {
    const k = keyOf(f.properties);
    seen.set(k, (seen.get(k) || 0) + 1);
    return { ...f, properties: { ...f.properties, chiefs: undefined, _key: k, _colour: colourOf(k), id: f.id } };
  });
  app.map.getSource('rc').setData({ type: 'FeatureCollection', features: feats });
  clear(document.getElementById('rc-legend'), el('div.legend-values', { style: 'margin-left:0' },
    [...seen].map(([k, n]) => el('span', {}, el('span.swatch.line', { style: `background:${colourOf(k)}` }), `${k}（${n}）`))));
}

async function show(code, fly = false) {
  const f = segments?.find((s) => s.properties.segment_code === code);
  const cardBox = document.getElementById('rc-card');
  const sumBox = document.getElementById('rc-summary');
  if (!f) { clear(cardBox, el('div.error', {}, `未找到路段 ${code}`)); return; }
  app.map.getSource('selection')?.setData({ type: 'FeatureCollection', features: [f] });
  if (fly) { const b = bboxOf(f.geometry); app.map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 60, maxZoom: 17 }); }
  clear(cardBox, el('p.muted', {}, '加载中…'));
  clear(sumBox);
  const enc = encodeURIComponent(code);
  let summary = null;
  try {
    summary = await optional(`/road_segments/${enc}/summary`);
  } catch (e) {
    clear(sumBox, el('div.error', {}, `汇总加载失败：${explain(e)}`));
  }
  clear(cardBox, signboard(summary?.card || cardFromFeature(f.properties)),
    hasRoute(`/road_segments/${enc}/card`)
      ? el('div.row', {}, el('a', { href: url(`/road_segments/${enc}/card`), target: '_blank' }, '打印公示牌（A4）')) : null);
  if (summary) clear(sumBox, el('h3', {}, '路段汇总'), renderSummary(summary));
  else if (!sumBox.childNodes.length) clear(sumBox, el('p.muted', {}, '路段汇总服务未启用。'));
}

function cardFromFeature(p) {
  return { road_name: p.road_name, start_desc: p.start_desc, end_desc: p.end_desc, chiefs: chiefsOf(p),
    supervise_phone: p.supervise_phone, duties: p.duties, segment_code: p.segment_code, length_m: p.length_m };
}

/** The 公示牌 (DOMAIN.md §4): 道路名称、起止点、路长姓名、联系方式、监督电话、主要职责. */
function signboard(c) {
  const chiefs = (c.chiefs || c.road_chiefs || []).map((x) =>
    el('div', {}, `${x.level || ''} ${x.name || ''}${x.title ? '（' + x.title + '）' : ''} ${x.phone || ''}`));
  const start = c.start_desc ?? c.start ?? c.from, end = c.end_desc ?? c.end ?? c.to;
  return el('div.signboard#rc-signboard', {},
    el('h3', {}, `${c.title || '路长制公示牌'}`),
    el('dl', {},
      el('dt', {}, '道路名称'), el('dd', {}, c.road_name || '—'),
      el('dt', {}, '路段编号'), el('dd', {}, c.segment_code || '—'),
      el('dt', {}, '起止点'), el('dd', {}, `${start || '—'} 至 ${end || '—'}`),
      el('dt', {}, '路长'), el('dd', {}, chiefs.length ? chiefs : '—'),
      el('dt', {}, '监督电话'), el('dd', {}, c.supervise_phone || '12319'),
      el('dt', {}, '主要职责'), el('dd', {}, c.duties || '—')));
}

function renderSummary(s) {
  const rows = [];
  const walk = (obj, prefix = '') => {
    for (const [k, v] of Object.entries(obj)) {
      if (['geometry', 'chiefs', 'card', 'id'].includes(k)) continue;
      const field = app.layerById.road_segments?.fields.find((f) => f.name === k);
      const label = prefix + (SUMMARY_LABELS[k] || field?.label || app.layerById[k]?.title || k);
      if (v && typeof v === 'object' && !Array.isArray(v)) walk(v, `${label} · `);
      else rows.push(el('tr', {}, el('th', {}, label), el('td', {}, typeof v === 'number' ? fmtNumber(v, 1) : fmtValue(v))));
    }
  };
  walk(s);
  return el('table.grid.attrs', {}, el('tbody', {}, rows));
}
