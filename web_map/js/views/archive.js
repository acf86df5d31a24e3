// 电子档案: one asset's record — every attribute with its 中文 label, 部件标识码, photos, history
// (who changed what, when), its alarms, and the road segment and unit grid it belongs to.
import { api, request, optional, explain, hasRoute } from '../api.js';
import { editForm } from './archive_edit.js';
import { el, clear, fmtValue, fmtTime, table } from '../ui.js';
import { anchorOf, pointInGeometry } from '../coords.js';

const SYSTEM = [['version', '版本'], ['created_at', '创建时间'], ['created_by', '创建人'], ['updated_at', '更新时间'],
  ['updated_by', '更新人'], ['src_file', '来源文件'], ['src_crs', '来源坐标系']];
const OPS = { insert: '新增', update: '修改', replace: '替换', delete: '删除', patch: '修改' };

let root, app;

export function init(a, node) {
  app = a; root = node;
  clear(root, el('p.muted', {}, '在地图上点击任一部件，或在告警、调度结果中点击，即可查看它的电子档案。'));
  app.map.addSource('selection', { type: 'geojson', data: empty() });
  app.map.addLayer({ id: 'selection-fill', type: 'fill', source: 'selection', filter: ['==', ['geometry-type'], 'Polygon'],
    paint: { 'fill-color': '#ffeb3b', 'fill-opacity': 0.25 } });
  app.map.addLayer({ id: 'selection-line', type: 'line', source: 'selection',
    paint: { 'line-color': '#ff6f00', 'line-width': 4 } });
  app.map.addLayer({ id: 'selection-point', type: 'circle', source: 'selection', filter: ['==', ['geometry-type'], 'Point'],
    paint: { 'circle-radius': 11, 'circle-color': 'rgba(0,0,0,0)', 'circle-stroke-color': '#ff6f00', 'circle-stroke-width': 3 } });
}

function empty() { return { type: 'FeatureCollection', features: [] }; }

export async function open(a, layerId, id) {
  app = a;
  const layer = app.layerById[layerId];
  if (!layer) { clear(root, el('div.error', {}, `未知图层：${layerId}`)); return; }
  clear(root, el('p.muted', {}, '加载中…'));
  let feature, etag;
  try {
    const res = await request(`/collections/${layerId}/items/${id}`);
    feature = res.data;
    etag = res.headers.get('ETag');
  } catch (e) {
    clear(root, el('div.error', {}, `档案加载失败：${explain(e)}`));
    return;
  }
  app.map.getSource('selection').setData({ type: 'FeatureCollection', features: [feature] });
  app.selected = { layer: layerId, id: feature.id, feature };
  const p = feature.properties;
  const code = p.obj_code;
  const title = p.name || p[layer.code_field] || p.cover_no || p.device_sn || code || `#${feature.id}`;
  const photos = photoUrls(p.photos);
  const coord = anchorOf(feature.geometry);

  clear(root,
    el('h2', { 'data-archive': `${layerId}/${feature.id}` }, `${layer.title}：${title}`),
    code ? el('div.row', {}, '部件标识码 ', el('span.code', {}, code)) : null,
    el('div.row', {},
      el('span.pill', {}, `状态：${p.status ?? '—'}`),
      coord ? el('button', { onclick: () => app.flyTo(coord, 18) }, '定位') : null,
      coord ? el('span.muted', { style: 'font-size:12px' }, `${coord[0].toFixed(6)}, ${coord[1].toFixed(6)}`) : null),
    photos.length ? el('div.photos', {}, photos.map((u) => el('a', { href: u, target: '_blank' }, el('img', { src: u, alt: '照片' })))) : null,
    editForm(layer, feature, etag, { reopen: () => open(app, layerId, feature.id), toast: app.toast }),
    el('h3', {}, '属性'),
    attributes(layer, p),
    el('h3', {}, '所属路段与网格'), el('div#archive-place', {}, '查询中…'),
    el('h3', {}, '告警'), el('div#archive-alarms', {}, '查询中…'),
    el('h3', {}, '变更历史'), el('div#archive-history', {}, '查询中…'));
  place(layer, feature);
  history(layerId, feature.id, layer);
  assetAlarms(layerId, feature);
}

function attributes(layer, p) {
  const rows = layer.fields.filter((f) => f.name !== 'photos').map((f) => [f.label, fmtValue(p[f.name], f)]);
  for (const [k, label] of SYSTEM) if (p[k] !== undefined) rows.push([label, k.endsWith('_at') ? fmtTime(p[k]) : fmtValue(p[k])]);
  const t = table(['字段', '值'], rows);
  t.classList.add('attrs');
  return t;
}

function photoUrls(v) {
  if (!v) return [];
  const list = Array.isArray(v) ? v : typeof v === 'string' ? v.split(/[,;，]/) : [v];
  return list.map((x) => (typeof x === 'string' ? x : x.url || x.href)).filter((u) => u && /^(https?:|\/|data:image)/.test(u));
}

async function history(layerId, id, layer) {
  const box = document.getElementById('archive-history');
  try {
    const doc = await api(`/collections/${layerId}/items/${id}/history`);
    const label = (name) => layer.fields.find((f) => f.name === name)?.label || name;
    const entries = [...doc.entries].reverse();
    clear(box, el('ol.history', { reversed: true }, entries.map((e) => {
      const changed = diff(e.before, e.after).map(([k, a, b]) => `${label(k)}：${fmtValue(a)} → ${fmtValue(b)}`);
      return el('li', {}, el('b', {}, `v${e.version} ${OPS[e.op] || e.op}`), ` ${fmtTime(e.at)} · ${e.actor || '—'}`,
        changed.length && e.op !== 'insert' ? el('div.muted', {}, changed.join('；')) : null);
    })));
  } catch (e) {
    clear(box, el('span.muted', {}, `无历史记录（${explain(e)}）`));
  }
}

function diff(before, after) {
  const b = before?.properties || before || {}, a = after?.properties || after || {};
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  keys.delete('geometry'); keys.delete('geom');
  const out = [];
  for (const k of keys) if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) out.push([k, b[k], a[k]]);
  const g = (x) => JSON.stringify(x?.geometry ?? x?.geom ?? null);
  if (g(before) !== g(after) && before && after) out.push(['位置', '原位置', '新位置']);
  return out;
}

async function place(layer, feature) {
  const box = document.getElementById('archive-place');
  const p = feature.properties;
  const coord = anchorOf(feature.geometry);
  const rows = [];
  let segment = p.road_segment || (layer.id === 'road_segments' ? p.segment_code : null);
  let grid = p.grid_code || null;
  try {
    if (!grid && coord && app.layerById.unit_grids && layer.id !== 'unit_grids') {
      const [x, y] = coord, d = 0.00001;
      const r = await api('/collections/unit_grids/items', { params: { bbox: `${x - d},${y - d},${x + d},${y + d}`, limit: 20 } });
      grid = r.features.find((f) => pointInGeometry(coord, f.geometry))?.properties.grid_code || null;
    }
    if (!segment && coord && app.layerById.road_segments && hasRoute('/nearest')) {
      const r = await optional('/nearest', { params: { layer: 'road_segments', lon: coord[0], lat: coord[1], k: 1, max_distance_m: 100 } });
      const f = r?.features?.[0];
      if (f) segment = f.properties.segment_code;
    }
  } catch { /* the place is a convenience; the record above is what matters */ }
  rows.push(['所在道路', p.road_name || '—']);
  rows.push(['所在路段', segment ? el('a', { href: '#', onclick: (e) => { e.preventDefault(); app.showSegment?.(segment); } }, segment) : '—']);
  rows.push(['单元网格', grid || '—']);
  rows.push(['行政区划', p.admin_code || '—']);
  const t = table(['', ''], rows);
  t.classList.add('attrs');
  clear(box, t);
}

async function assetAlarms(layerId, feature) {
  const box = document.getElementById('archive-alarms');
  if (!hasRoute('/alarms')) {
    clear(box, el('span.muted', {}, layerId === 'smart_covers' && feature.properties.status === '报警'
      ? '设备状态为“报警”（告警服务未启用，无明细）' : '告警服务未启用'));
    return;
  }
  try {
    const doc = await optional('/alarms', { params: { layer: layerId, feature_id: feature.id, limit: 1000 } });
    const list = (Array.isArray(doc) ? doc : doc?.alarms || doc?.items || doc?.features || [])
      .filter((a) => (a.feature_id ?? a.properties?.feature_id ?? feature.id) === feature.id).slice(0, 50);
    if (!list.length) { clear(box, el('span.muted', {}, '无告警')); return; }
    const STATES = { open: '未处理', acknowledged: '已确认', cleared: '已恢复', resolved: '已处置' };
    clear(box, table(['时间', '级别', '告警', '状态'], list.map((a) => {
      const x = a.properties || a;
      return [fmtTime(x.raised_at || x.at || x.time), x.level || '—', x.message || x.type || x.name || '—',
        STATES[x.state] || x.state || '—'];
    })));
  } catch (e) {
    clear(box, el('span.muted', {}, `告警查询失败：${explain(e)}`));
  }
}
