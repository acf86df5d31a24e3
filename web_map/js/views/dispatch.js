// 调度: click the map or type a coordinate (WGS84, or GCJ-02 read off an AMap screen) and get the
// k nearest assets of a layer with distances in metres, drawn on the map (GET /nearest).
import { api, optional, explain, hasRoute } from '../api.js';
import { el, clear, fmtDistance, table, toast } from '../ui.js';
import { anchorOf, distanceM, gcj02ToWgs84, parseLonLat } from '../coords.js';

let root, app, marker;
const LAST = 'geoapi.dispatch';

export function init(a, node) {
  app = a; root = node;
  const saved = JSON.parse(localStorage.getItem(LAST) || '{}');
  const layers = app.layers.filter((l) => l.kind !== 'area' && l.id !== 'unit_grids');
  const layerSel = el('select#dispatch-layer', {}, layers.map((l) =>
    el('option', { value: l.id, selected: l.id === (saved.layer || 'manholes') }, l.title)));
  const k = el('input#dispatch-k', { type: 'number', min: 1, max: 100, value: saved.k || 5, style: 'width:4em' });
  const maxD = el('input#dispatch-max', { type: 'number', min: 0, step: 100, placeholder: '不限', style: 'width:6em' });
  const coordIn = el('input#dispatch-coord', { type: 'text', placeholder: '经度, 纬度  如 113.2420, 35.2160', size: 26 });
  const crs = el('select#dispatch-crs', {}, el('option', { value: 'WGS84' }, 'WGS84 / CGCS2000（天地图、GPS）'),
    el('option', { value: 'GCJ-02' }, 'GCJ-02（高德、腾讯地图）'));
  const statusIn = el('input#dispatch-status', { type: 'text', placeholder: '如 破损,丢失（可空）', size: 16 });
  clear(root,
    el('h2', {}, '最近部件查询'),
    el('p.muted', {}, '在地图上点击任意位置，或输入坐标后按“查询”。'),
    el('div.row', {}, el('label', {}, '图层 ', layerSel), el('label', {}, '数量 ', k)),
    el('div.row', {}, el('label', {}, '坐标 ', coordIn)),
    el('div.row', {}, el('label', {}, '坐标系 ', crs)),
    el('div.row', {}, el('label', {}, '状态 ', statusIn), el('label', {}, '最远(米) ', maxD)),
    el('div.row', {}, el('button.primary#dispatch-go', { onclick: () => fromInput() }, '查询'),
      el('button', { onclick: () => reset() }, '清除')),
    el('div#dispatch-note'),
    el('div#dispatch-results'));
  coordIn.addEventListener('keydown', (e) => { if (e.key === 'Enter') fromInput(); });

  app.map.addSource('dispatch', { type: 'geojson', data: empty() });
  app.map.addLayer({ id: 'dispatch-lines', type: 'line', source: 'dispatch', filter: ['==', ['get', 'kind'], 'link'],
    paint: { 'line-color': '#0d47a1', 'line-width': 2, 'line-dasharray': [2, 2] } });
  app.map.addLayer({ id: 'dispatch-hits', type: 'circle', source: 'dispatch', filter: ['==', ['get', 'kind'], 'hit'],
    paint: { 'circle-radius': 10, 'circle-color': '#0d47a1', 'circle-stroke-color': '#fff', 'circle-stroke-width': 2 } });
  app.map.addLayer({ id: 'dispatch-rank', type: 'symbol', source: 'dispatch', filter: ['==', ['get', 'kind'], 'hit'],
    layout: { 'text-field': ['to-string', ['get', 'rank']], 'text-size': 12, 'text-font': ['Noto Sans Regular'],
      'text-allow-overlap': true },
    paint: { 'text-color': '#fff' } });
  app.clickHandlers.dispatch = (e) => {
    coordIn.value = `${e.lngLat.lng.toFixed(6)}, ${e.lngLat.lat.toFixed(6)}`;
    crs.value = 'WGS84';
    search([e.lngLat.lng, e.lngLat.lat], 'WGS84');
    return true;
  };
  app.nearest = search;
}

function empty() { return { type: 'FeatureCollection', features: [] }; }

function fromInput() {
  const c = parseLonLat(document.getElementById('dispatch-coord').value);
  if (!c) { toast('坐标格式不对：请输入“经度, 纬度”，如 113.2420, 35.2160'); return; }
  search(c, document.getElementById('dispatch-crs').value);
}

function reset() {
  app.map.getSource('dispatch').setData(empty());
  marker?.remove(); marker = null;
  clear(document.getElementById('dispatch-results'));
  clear(document.getElementById('dispatch-note'));
}

/** Nearest search from a coordinate in ``crs``; the query point is drawn in WGS84. */
export async function search(coord, crs = 'WGS84') {
  const layer = document.getElementById('dispatch-layer').value;
  const k = Math.max(1, Math.min(100, Number(document.getElementById('dispatch-k').value) || 5));
  const status = document.getElementById('dispatch-status').value.trim();
  const maxD = Number(document.getElementById('dispatch-max').value) || undefined;
  localStorage.setItem(LAST, JSON.stringify({ layer, k }));
  const wgs = crs === 'GCJ-02' ? gcj02ToWgs84(coord[0], coord[1]) : coord;
  const out = document.getElementById('dispatch-results');
  const note = document.getElementById('dispatch-note');
  clear(out, el('p.muted', {}, '查询中…'));
  clear(note);
  let hits;
  try {
    const statuses = status.split(/[,，、\s]+/).filter(Boolean);
    const params = { layer, lon: coord[0], lat: coord[1], k, crs: crs === 'GCJ-02' ? 'GCJ-02' : 'EPSG:4326',
      max_distance_m: maxD,
      filter: statuses.length ? `status IN (${statuses.map((x) => `'${x.replace(/'/g, "''")}'`).join(',')})` : undefined };
    const doc = await optional('/nearest', { params });
    if (doc) {
      // Geometries come back in the query's CRS: draw them in WGS84 like the rest of the map.
      const back = (c) => (c && crs === 'GCJ-02' ? gcj02ToWgs84(c[0], c[1]) : c);
      hits = (doc.features || doc.items || doc.results || []).map((f) => ({
        id: f.id ?? f.properties?.id, props: f.properties || f, coord: back(anchorOf(f.geometry)),
        distance: f.properties?.distance_m ?? f.distance_m ?? f.properties?.distance ?? f.distance }));
    } else {
      hits = await nearestHere(layer, wgs, k, status, maxD);
      note.append(el('div.notice', {}, '最近查询服务未启用：距离在浏览器中按直线估算。'));
    }
  } catch (e) {
    clear(out, el('div.error', {}, `查询失败：${explain(e)}`));
    return;
  }
  draw(wgs, hits);
  const spec = app.layerById[layer];
  clear(out,
    el('h3', {}, `${spec.title} 最近 ${hits.length} 个`),
    table(['#', '名称/编号', '状态', '距离'], hits.map((h, i) => [i + 1, label(spec, h), h.props.status ?? '—', fmtDistance(h.distance)]),
      { numeric: [0, 3], onRowClick: (i) => { app.flyTo(hits[i].coord, 18); app.openArchive(layer, hits[i].id); } }));
  out.querySelector('table').id = 'dispatch-table';
}

function label(spec, h) {
  const p = h.props;
  return p.name || p[spec.code_field] || p.cover_no || p.device_sn || p.obj_code || `#${h.id}`;
}

/** Without /nearest: grow a bbox around the point until it holds k candidates, then sort by distance. */
async function nearestHere(layer, [x, y], k, status, maxD) {
  let d = 0.002;
  let feats = [];
  for (let i = 0; i < 7; i++, d *= 3) {
    const r = await api(`/collections/${layer}/items`, { params: { bbox: `${x - d},${y - d},${x + d},${y + d}`, limit: 2000,
      status: status.split(/[,，、\s]+/).filter(Boolean).join(',') || undefined } });
    feats = r.features;
    if (feats.length >= k) break;
  }
  return feats.map((f) => ({ id: f.id, props: f.properties, coord: anchorOf(f.geometry), distance: distanceM([x, y], anchorOf(f.geometry)) }))
    .filter((h) => !maxD || h.distance <= maxD)
    .sort((a, b) => a.distance - b.distance).slice(0, k);
}

function draw(origin, hits) {
  const features = hits.filter((h) => h.coord).flatMap((h, i) => [
    { type: 'Feature', properties: { kind: 'link' }, geometry: { type: 'LineString', coordinates: [origin, h.coord] } },
    { type: 'Feature', id: h.id, properties: { kind: 'hit', rank: i + 1, distance_m: h.distance, fid: h.id }, geometry: { type: 'Point', coordinates: h.coord } },
  ]);
  app.map.getSource('dispatch').setData({ type: 'FeatureCollection', features });
  marker?.remove();
  marker = new app.maplibregl.Marker({ element: el('div.query-marker', { title: '查询点' }) }).setLngLat(origin).addTo(app.map);
  const pts = [origin, ...hits.map((h) => h.coord).filter(Boolean)];
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  app.map.fitBounds([[Math.min(...xs), Math.min(...ys)], [Math.max(...xs), Math.max(...ys)]],
    { padding: 80, maxZoom: 18, duration: 600 });
  window.dispatchEvent(new CustomEvent('geoapi:nearest', { detail: { origin, hits } }));
}
