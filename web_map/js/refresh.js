// Refresh exactly the tiles that changed (GET /tiles/changes?since=<seq>, docs/tiles.md), so an
// edit, an import or a telemetry status change shows without reloading the page.

import { API, authHeaders, hasRoute } from './api.js';

const POLL_MS = 4000;
const BUFFER = 64 / 4096; // the tiles' edge buffer: a point near an edge is drawn in the neighbour too

export function startTileRefresh(app, versions) {
  let seq = null;
  let failures = 0;
  const state = document.getElementById('live-state');
  app.applyTileChanges = (changes) => apply(app, versions, changes);
  if (!hasRoute('/tiles/changes')) { state.textContent = '实时：未启用'; return; }
  const tick = async () => {
    try {
      const res = await fetch(`${API}/tiles/changes?since=${seq ?? 0}&limit=1000`,
        { cache: 'no-store', headers: authHeaders() });
      if (res.status === 404) { state.textContent = '实时：未启用'; return; }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = await res.json();
      if (seq !== null && body.changes?.length) apply(app, versions, body.changes);
      seq = body.seq ?? seq ?? 0;
      failures = 0;
      state.textContent = '实时：已连接'; state.className = 'pill ok';
    } catch (e) {
      failures += 1;
      state.textContent = '实时：断开，重试中'; state.className = 'pill bad';
    }
    setTimeout(tick, Math.min(POLL_MS * (1 + failures), 30000));
  };
  tick();
}

/** Mark the tiles each notice touches at the zooms on screen and reload only those. */
export function apply(app, versions, changes) {
  const map = app.map;
  const source = map.getSource(app.source);
  if (!source) return [];
  const srcMax = source.maxzoom ?? 22;
  const z0 = Math.floor(map.getZoom());
  const ids = new Map();
  for (const n of changes) {
    const zooms = [z0 - 1, z0, z0 + 1].filter((z) => z >= 0 && z <= srcMax
      && (n.minzoom === undefined || z >= n.minzoom - 1) && (n.maxzoom === undefined || z <= n.maxzoom));
    const tiles = n.tiles?.length ? n.tiles.map((t) => (Array.isArray(t) ? { z: t[0], x: t[1], y: t[2] } : t))
      : zooms.flatMap((z) => tilesOfBbox(n.bbox, z));
    for (const t of tiles) {
      const key = `${t.z}/${t.x}/${t.y}`;
      versions.set(key, n.seq ?? Date.now());
      ids.set(key, t);
    }
  }
  const list = [...ids.values()];
  if (list.length) map.refreshTiles(app.source, list);
  app.lastRefreshedTiles = list;
  window.dispatchEvent(new CustomEvent('geoapi:tiles-changed', { detail: { changes, tiles: list } }));
  return list;
}

export function tilesOfBbox(bbox, z) {
  if (!bbox) return [];
  const n = 2 ** z;
  const x = (lon) => ((lon + 180) / 360) * n;
  const y = (lat) => {
    const r = (Math.max(-85.0511, Math.min(85.0511, lat)) * Math.PI) / 180;
    return ((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2) * n;
  };
  const clamp = (v) => Math.max(0, Math.min(n - 1, v));
  const x0 = clamp(Math.floor(x(bbox[0]) - BUFFER)), x1 = clamp(Math.floor(x(bbox[2]) + BUFFER));
  const y0 = clamp(Math.floor(y(bbox[3]) - BUFFER)), y1 = clamp(Math.floor(y(bbox[1]) + BUFFER));
  const out = [];
  for (let tx = x0; tx <= x1 && out.length < 256; tx++) for (let ty = y0; ty <= y1; ty++) out.push({ z, x: tx, y: ty });
  return out;
}
