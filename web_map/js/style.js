// The style comes from GET /styles/yizhangtu.json; these are the pieces the page adds to it.

/** A minimal style from /layers, used only when the server has no style endpoint. */
export function fallbackStyle(layers, api) {
  const ids = layers.map((l) => l.id).join(',');
  const out = [{ id: 'background', type: 'background', paint: { 'background-color': '#f4f3ef' } }];
  const order = (l) => (l.geometry.includes('Polygon') ? 0 : l.geometry.includes('Line') ? 1 : 2);
  for (const l of [...layers].sort((a, b) => order(a) - order(b))) {
    const s = l.style || {};
    const colour = s.color_by && s.colors
      ? ['match', ['to-string', ['get', s.color_by]], ...Object.entries(s.colors).flat(), s.default_color || '#607d8b']
      : s.default_color || '#607d8b';
    const meta = { 'geoapi:layer': l.id, 'geoapi:title': l.title, 'geoapi:role': 'features',
      'geoapi:legend_group': s.legend_group, 'geoapi:color_by': s.color_by };
    const base = { id: l.id, source: 'geoapi', 'source-layer': l.id, minzoom: l.tiles?.minzoom || 0, metadata: meta };
    if (order(l) === 0) out.push({ ...base, type: 'fill', paint: { 'fill-color': colour, 'fill-opacity': s.opacity ?? 0.3 } });
    else if (order(l) === 1) out.push({ ...base, type: 'line', paint: { 'line-color': colour, 'line-width': s.width || 2 } });
    else out.push({ ...base, type: 'circle', paint: { 'circle-color': colour, 'circle-radius': s.radius || 4,
      'circle-stroke-color': '#fff', 'circle-stroke-width': 1 } });
  }
  return {
    version: 8, name: '一张图',
    sources: { geoapi: { type: 'vector', tiles: [`${api}/tiles/${ids}/{z}/{x}/{y}.mvt`], minzoom: 0, maxzoom: 16 } },
    layers: out,
  };
}

/** 天地图 WMTS (球面墨卡托 _w) under our layers; DOMAIN.md §7.3: CGCS2000, no GCJ offset. */
export function addTianditu(style, key) {
  const tiles = (layer) => [0, 1, 2, 3, 4, 5, 6, 7].map((n) =>
    `https://t${n}.tianditu.gov.cn/${layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=${layer}` +
    `&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=${encodeURIComponent(key)}`);
  const attribution = '© 天地图';
  for (const layer of ['vec', 'cva', 'img', 'cia']) {
    style.sources[`tdt-${layer}`] = { type: 'raster', tiles: tiles(layer), tileSize: 256, maxzoom: 18, attribution };
  }
  const raster = (id, src, visible) => ({ id, type: 'raster', source: src,
    layout: { visibility: visible ? 'visible' : 'none' }, metadata: { 'webmap:basemap': true } });
  const at = style.layers.findIndex((l) => l.type !== 'background');
  style.layers.splice(at < 0 ? style.layers.length : at, 0,
    raster('tdt-vec', 'tdt-vec', true), raster('tdt-vec-label', 'tdt-cva', true),
    raster('tdt-img', 'tdt-img', false), raster('tdt-img-label', 'tdt-cia', false));
}
