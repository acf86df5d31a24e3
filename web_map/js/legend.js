// The layer legend: grouped by style.legend_group, a toggle per layer, colours from the layer files.
import { el, clear } from './ui.js';

const HIDDEN_KEY = 'geoapi.hiddenLayers';

export function buildLegend(app, root) {
  const hidden = new Set(JSON.parse(localStorage.getItem(HIDDEN_KEY) || '[]'));
  const groups = new Map();
  for (const layer of app.layers) {
    if (!app.styleLayersOf(layer.id).length) continue;
    const g = layer.style?.legend_group || '其他';
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push(layer);
  }
  const nodes = [];
  for (const [group, layers] of groups) {
    nodes.push(el('div.legend-group', {}, group));
    for (const layer of layers) {
      const box = el('input', { type: 'checkbox', checked: !hidden.has(layer.id), 'data-layer': layer.id,
        onchange: () => {
          setLayerVisible(app, layer.id, box.checked);
          if (box.checked) hidden.delete(layer.id); else hidden.add(layer.id);
          localStorage.setItem(HIDDEN_KEY, JSON.stringify([...hidden]));
        } });
      nodes.push(el('label.legend-layer', { title: layer.description || '' }, box,
        swatch(layer, layer.style?.default_color), layer.title));
      const colours = Object.entries(layer.style?.colors || {});
      if (colours.length) {
        const field = layer.fields.find((f) => f.name === layer.style.color_by);
        nodes.push(el('div.legend-values', { title: field ? `按${field.label}着色` : '' },
          colours.map(([value, colour]) => el('span', {}, swatch(layer, colour), value))));
      }
      if (hidden.has(layer.id)) setLayerVisible(app, layer.id, false);
    }
  }
  nodes.push(el('div.muted', { style: 'font-size:12px;margin-top:6px' },
    '低缩放级别显示网格聚合数（圆内数字），红色表示含异常状态；放大后显示单个部件。'));
  clear(root, nodes);
}

export function setLayerVisible(app, layerId, visible) {
  for (const id of app.styleLayersOf(layerId)) {
    app.map.setLayoutProperty(id, 'visibility', visible ? 'visible' : 'none');
  }
}

function swatch(layer, colour) {
  const kind = layer.geometry.includes('Line') ? '.line' : layer.geometry.includes('Polygon') ? '.fill' : '';
  return el(`span.swatch${kind}`, { style: `background:${colour || '#607d8b'}` });
}
