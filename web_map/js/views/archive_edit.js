// 电子档案 editing (editor key): change an asset's status, defects and 整治状态 in place. The PATCH
// carries the record's ETag as If-Match, so an edit made meanwhile by someone else is refused
// (412) instead of silently overwritten.
import { request, explain, ApiError } from '../api.js';
import { el } from '../ui.js';

const EDITABLE = ['status', 'defects', 'rectify_status'];

/** The edit form for one record, or null when the layer has none of the editable fields. */
export function editForm(layer, feature, etag, { reopen, toast }) {
  const fields = EDITABLE.map((n) => layer.fields.find((f) => f.name === n))
    .filter((f) => f && (f.type === 'enum' || f.type === 'enum_list'));
  if (!fields.length) return null;
  const p = feature.properties;
  const inputs = fields.map((f) => [f, f.type === 'enum' ? enumSelect(f, p[f.name]) : enumChecks(f, p[f.name])]);
  const msg = el('div#edit-msg', {});
  const save = el('button.primary#edit-save', {}, '保存修改');
  save.addEventListener('click', async () => {
    const props = {};
    for (const [f, input] of inputs) {
      const value = input.read();
      if (JSON.stringify(value) !== JSON.stringify(p[f.name] ?? (f.type === 'enum_list' ? [] : null))) props[f.name] = value;
    }
    if (!Object.keys(props).length) { msg.className = 'muted'; msg.textContent = '没有修改'; return; }
    save.disabled = true;
    msg.className = 'muted'; msg.textContent = '保存中…';
    try {
      const { data } = await request(`/collections/${layer.id}/items/${feature.id}`, {
        method: 'PATCH', json: { type: 'Feature', properties: props }, headers: etag ? { 'If-Match': etag } : {} });
      toast(`已保存（版本 ${data.properties.version ?? ''}）`);
      reopen();
    } catch (e) {
      save.disabled = false;
      msg.className = 'error';
      if (e instanceof ApiError && e.status === 412) {
        msg.replaceChildren('该记录已被他人修改，请刷新', ' ', el('button#edit-reload', { onclick: reopen }, '刷新'));
      } else msg.textContent = `保存失败：${explain(e)}`;
    }
  });
  return el('div.edit-form.needs-editor#archive-edit', {},
    el('h3', {}, '修改状态'),
    inputs.map(([f, input]) => el('div.row', {}, el('span', {}, `${f.label} `), input.node)),
    el('div.row', {}, save), msg);
}

function enumSelect(f, value) {
  const node = el(`select#edit-${f.name}`, {}, value ? null : el('option', { value: '' }, '—'),
    f.values.map((v) => el('option', { value: v, selected: v === value }, v)));
  return { node, read: () => node.value || null };
}

function enumChecks(f, value) {
  const have = new Set(Array.isArray(value) ? value : []);
  const boxes = f.values.map((v) => el('input', { type: 'checkbox', value: v, checked: have.has(v) }));
  const node = el(`div.checks#edit-${f.name}`, {}, boxes.map((b) => el('label', {}, b, b.value)));
  return { node, read: () => boxes.filter((b) => b.checked).map((b) => b.value) };
}
