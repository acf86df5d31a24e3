// 窨井盖监管一张图: boots the map from /layers and the generated style, wires the tabs.
import * as maplibregl from '../vendor/maplibre-gl/maplibre-gl.mjs';
import { API, api, optional, explain, getKey, loadRoutes } from './api.js';
import { wireLogin } from './auth.js';
import { toast } from './ui.js';
import { buildLegend } from './legend.js';
import { fallbackStyle, addTianditu } from './style.js';
import { startTileRefresh } from './refresh.js';
import * as overview from './views/overview.js';
import * as archive from './views/archive.js';
import * as dispatch from './views/dispatch.js';
import * as coverage from './views/coverage.js';
import * as roadchief from './views/roadchief.js';
import * as importer from './views/importer.js';

const VIEWS = { overview, archive, dispatch, coverage, roadchief, import: importer };
const SOURCE = 'geoapi';

async function boot() {
  const [config, layerDoc] = await Promise.all([
    api('/map/config.json').catch(() => ({})),
    api('/layers'),
    loadRoutes(),
  ]);
  const layers = layerDoc.layers;
  document.getElementById('city-name').textContent = config.city_name || '';
  document.title = `${config.city_name || ''} 窨井盖监管一张图`;

  let style = await optional('/styles/yizhangtu.json');
  const styleGenerated = !!style;
  if (!style) style = fallbackStyle(layers, API);
  if (config.tianditu_key) addTianditu(style, config.tianditu_key);

  const bounds = config.city_bounds || [112.5, 34.75, 113.75, 35.55];
  const map = new maplibregl.Map({
    container: 'map',
    style,
    center: [113.242, 35.216],
    zoom: 12,
    maxBounds: [[bounds[0] - 1, bounds[1] - 1], [bounds[2] + 1, bounds[3] + 1]],
    attributionControl: { compact: true, customAttribution: 'geoapi' },
    // CJK labels are drawn with the browser's own fonts; the served glyphs cover Latin only.
    localIdeographFontFamily: "'WenQuanYi Micro Hei', 'Noto Sans CJK SC', 'Microsoft YaHei', 'PingFang SC', sans-serif",
    transformRequest: (u, kind) => tileRequest(u, kind),
  });
  window.map = map;
  window.maplibregl = maplibregl;
  map.addControl(new maplibregl.NavigationControl({ visualizePitch: false }), 'top-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-right');

  const app = {
    map, maplibregl, layers, config, styleGenerated, source: SOURCE,
    layerById: Object.fromEntries(layers.map((l) => [l.id, l])),
    activeTab: 'overview',
    clickHandlers: {},
    /** style layer ids drawn from one data layer */
    styleLayersOf(layerId) {
      return map.getStyle().layers.filter((l) => l.metadata?.['geoapi:layer'] === layerId).map((l) => l.id);
    },
    /** the layers whose features a click can pick (not labels, not count cells) */
    pickableLayerIds() {
      return map.getStyle().layers.filter((l) => l.metadata?.['geoapi:role'] === 'features'
        || l.metadata?.['geoapi:role'] === 'aggregate' || l.metadata?.['webmap:pickable']).map((l) => l.id);
    },
    setTab, toast,
    openArchive: (layerId, id) => { setTab('archive'); archive.open(app, layerId, id); },
    flyTo(coord, zoom = 17) { map.flyTo({ center: coord, zoom: Math.max(map.getZoom(), zoom), speed: 1.6 }); },
  };
  window.geoapiApp = app;

  wireTabs(app);
  const userKnown = wireLogin();
  wireBasemap(app);
  map.on('mousemove', (e) => {
    document.getElementById('coord-box').textContent =
      `${e.lngLat.lng.toFixed(6)}, ${e.lngLat.lat.toFixed(6)}  z${map.getZoom().toFixed(1)}`;
  });
  map.on('click', (e) => onMapClick(app, e));
  map.on('error', (e) => console.warn('map:', e.error?.message || e));

  await new Promise((resolve) => (map.loaded() ? resolve() : map.once('load', resolve)));
  buildLegend(app, document.getElementById('legend-body'));
  for (const view of Object.values(VIEWS)) view.init?.(app, document.getElementById(`tab-${viewName(view)}`));
  startTileRefresh(app, tileVersions);
  await userKnown;
  window.geoapiReady = true;
  document.body.dataset.ready = '1';
}

function viewName(view) { return Object.entries(VIEWS).find(([, v]) => v === view)[0]; }

// Tiles that changed get a ?v=<seq> so neither the browser's HTTP cache nor a proxy hands back
// the old tile when the map refreshes them.
const tileVersions = new Map();
function tileRequest(u, kind) {
  const out = { url: u };
  if (getKey() && u.startsWith(API)) out.headers = { Authorization: `Bearer ${getKey()}` };
  if (kind === 'Tile' && tileVersions.size) {
    const m = u.match(/\/(\d+)\/(\d+)\/(\d+)\.mvt/);
    const v = m && tileVersions.get(`${m[1]}/${m[2]}/${m[3]}`);
    if (v) out.url = u + (u.includes('?') ? '&' : '?') + `v=${v}`;
  }
  return out;
}

function setTab(name) {
  const app = window.geoapiApp;
  document.querySelectorAll('#tabs button').forEach((b) => b.classList.toggle('active', b.dataset.tab === name));
  document.querySelectorAll('.tab').forEach((s) => s.classList.toggle('active', s.id === `tab-${name}`));
  const previous = app.activeTab;
  app.activeTab = name;
  if (previous !== name) {
    VIEWS[previous]?.deactivate?.(app);
    VIEWS[name]?.activate?.(app);
  }
  app.map.getCanvas().style.cursor = name === 'dispatch' ? 'crosshair' : '';
}

function wireTabs() {
  document.getElementById('tabs').addEventListener('click', (e) => {
    const tab = e.target.closest('button')?.dataset.tab;
    if (tab) setTab(tab);
  });
}

function onMapClick(app, e) {
  const handler = app.clickHandlers[app.activeTab];
  if (handler && handler(e) === true) return;
  const box = [[e.point.x - 4, e.point.y - 4], [e.point.x + 4, e.point.y + 4]];
  const hits = app.map.queryRenderedFeatures(box, { layers: app.pickableLayerIds() });
  if (!hits.length) return;
  // Points before lines before areas: the smallest thing under the cursor is what was meant.
  const rank = (f) => (f.geometry.type.includes('Point') ? 0 : f.geometry.type.includes('Line') ? 1 : 2);
  hits.sort((a, b) => rank(a) - rank(b));
  const hit = hits[0];
  if (hit.layer.metadata?.['geoapi:role'] === 'aggregate' || hit.properties.count !== undefined && hit.id === undefined) {
    app.map.easeTo({ center: e.lngLat, zoom: app.map.getZoom() + 2 });
    return;
  }
  const layerId = hit.layer.metadata?.['geoapi:layer'] || hit.sourceLayer || hit.properties.layer;
  const fid = hit.id ?? hit.properties.id;
  if (layerId && fid !== undefined) app.openArchive(layerId, fid);
}

function wireBasemap(app) {
  if (!app.config.tianditu_key) return;
  const box = document.getElementById('basemap-box');
  box.hidden = false;
  const sel = document.getElementById('basemap');
  sel.value = 'vec';
  sel.addEventListener('change', () => {
    for (const kind of ['vec', 'img']) {
      for (const id of [`tdt-${kind}`, `tdt-${kind}-label`]) {
        if (app.map.getLayer(id)) app.map.setLayoutProperty(id, 'visibility', sel.value === kind ? 'visible' : 'none');
      }
    }
  });
}

boot().catch((e) => {
  console.error(e);
  document.getElementById('legend-body').textContent = `加载失败：${explain(e)}`;
  toast(`地图加载失败：${explain(e)}`, 10000);
});
