// 导入 (editor key): upload a zip / GeoPackage / GeoJSON / CSV, choose layer, CRS and encoding or
// accept the detection, dry-run, read the report, then import, with progress; download the
// rejected rows, roll an import back (POST /imports, GET /imports/{id}; docs/imports.md).
import { api, download, explain, hasRoute } from '../api.js';
import { can, currentUser, ROLE_LABELS } from '../auth.js';
import { el, clear, fmtNumber } from '../ui.js';
import { STATES, FINAL, reportBlock } from './import_report.js';

const CRS = [['', '自动识别（.prj）'], ['EPSG:4490', 'CGCS2000 经纬度 (EPSG:4490)'], ['EPSG:4326', 'WGS 84 经纬度 (EPSG:4326)'],
  ['EPSG:4547', 'CGCS2000 3度带 114°E 无带号 (EPSG:4547)'], ['EPSG:4526', 'CGCS2000 3度带 38带 有带号 (EPSG:4526)'],
  ['EPSG:2436', '北京54 3度带 114°E (EPSG:2436)'], ['EPSG:2383', '西安80 3度带 114°E (EPSG:2383)'],
  ['GCJ-02', 'GCJ-02 火星坐标（高德）'], ['BD-09', 'BD-09（百度）']];
const ENCODINGS = [['', '自动识别（.cpg / DBF 标志 / UTF-8 / GB18030）'], ['UTF-8', 'UTF-8'], ['GBK', 'GBK / CP936'], ['GB18030', 'GB18030']];
const POLL_MS = 700;

let root, app, polling = null, current = null;

export function init(a, node) {
  app = a; root = node;
  render();
  window.addEventListener('geoapi:user', render);
}

function render() {
  const enabled = hasRoute('/imports');
  const editor = can('editor');
  const user = currentUser();
  const preferred = app.layerById.manholes ? 'manholes' : app.layers[0]?.id;
  const layerSel = el('select#import-layer', {}, app.layers.map((l) => el('option', { value: l.id, selected: l.id === preferred }, l.title)));
  const opt = (id, list) => el(`select#${id}`, {}, list.map(([v, t]) => el('option', { value: v }, t)));
  const off = !enabled || !editor;
  clear(root,
    el('h2', {}, '数据导入'),
    !editor ? el('div.notice#import-needs-editor', {}, user.name === 'anonymous'
      ? '导入需要“编辑”及以上权限的 API 密钥：请先点右上角“登录”。'
      : `当前密钥为“${ROLE_LABELS[user.role] || user.role}”权限，导入需要“编辑”及以上权限。`) : null,
    !enabled ? el('div.notice#import-disabled', {}, '导入服务尚未启用（服务器没有 /imports 接口）。') : null,
    el('div.needs-editor', {},
      el('div.row', {}, fileChooser()),
      el('div.row', {}, el('label', {}, '目标图层 ', layerSel)),
      el('div.row', {}, el('label', {}, '坐标系 ', opt('import-crs', CRS))),
      el('div.row', {}, el('label', {}, '编码 ', opt('import-encoding', ENCODINGS))),
      el('div.row', {}, el('label', {}, '方式 ', opt('import-mode', [['append', '追加'], ['upsert', '按编码更新或追加'], ['replace', '替换整个图层']])),
        el('label', {}, '出错时 ', opt('import-on-error', [['abort', '全部不导入'], ['skip', '跳过错误行']]))),
      el('p.muted', { style: 'font-size:12px' }, '建议先“试导入”：检查编码、坐标系和每一行，不写入数据。')),
    el('div.row', {},
      el('button#import-dry.needs-editor', { disabled: off, onclick: () => start(true) }, '试导入（只检查）'),
      el('button.primary#import-go.needs-editor', { disabled: off, onclick: () => start(false) }, '正式导入')),
    el('div.progress', {}, el('div#import-bar')),
    el('div#import-state.muted', {}, ''),
    el('div#import-report'));
  if (current) show(current);
}

// The native file input labels itself in the browser's UI language; this one says 选择文件.
function fileChooser() {
  const name = el('span#import-file-name.muted', {}, '未选择文件');
  const input = el('input#import-file', { type: 'file', hidden: true, accept: '.zip,.gpkg,.geojson,.json,.csv,.xlsx',
    onchange: () => { name.textContent = input.files[0]?.name || '未选择文件'; } });
  return [el('label.file-btn', {}, '选择文件…', input), name];
}

async function start(dryRun) {
  const file = document.getElementById('import-file').files[0];
  const state = document.getElementById('import-state');
  if (!file) { state.textContent = '请先选择文件（shapefile 压缩包 .zip、.gpkg、.geojson 或 .csv）'; return; }
  const form = new FormData();
  form.append('file', file);
  const fields = { layer: 'import-layer', crs: 'import-crs', encoding: 'import-encoding', mode: 'import-mode', on_error: 'import-on-error' };
  for (const [name, id] of Object.entries(fields)) {
    const v = document.getElementById(id).value;
    if (v) form.append(name, v);
  }
  form.append('dry_run', dryRun ? 'true' : 'false');
  clearTimeout(polling);
  current = null;
  state.dataset.state = 'uploading';
  state.textContent = `上传中：${file.name}（${fmtNumber(Math.round(file.size / 1024))} KB）…`;
  document.getElementById('import-bar').style.width = '0%';
  clear(document.getElementById('import-report'));
  try {
    follow(await api('/imports', { method: 'POST', body: form }));
  } catch (e) {
    state.textContent = '';
    clear(document.getElementById('import-report'), el('div.error#import-summary', {}, `导入失败：${explain(e)}`));
  }
}

function follow(job) {
  clearTimeout(polling);
  show(job);
  if (FINAL.has(job.state)) {
    if (job.state === 'done') { app.toast('导入完成，地图已更新'); window.dispatchEvent(new CustomEvent('geoapi:imported', { detail: job })); }
    return;
  }
  polling = setTimeout(async () => {
    try { follow(await api(`/imports/${encodeURIComponent(job.id)}`)); } catch (e) {
      document.getElementById('import-state').textContent = `进度查询失败：${explain(e)}`;
    }
  }, POLL_MS);
}

function show(batch) {
  current = batch;
  const percent = Math.max(0, Math.min(100, Number(batch.percent) || 0));
  const bar = document.getElementById('import-bar');
  bar.style.width = `${percent}%`;
  bar.style.background = batch.state === 'failed' ? 'var(--danger)' : '';
  const dry = batch.state === 'dry_run' || batch.options?.dry_run;
  const box = document.getElementById('import-state');
  box.dataset.state = batch.state;
  box.textContent = `${dry ? '试导入' : '导入'} ${batch.id}：${STATES[batch.state] || batch.state}（${fmtNumber(Math.round(percent))}%）`;
  if (!batch.report) return;
  const layer = app.layerById[batch.layer];
  const label = (name) => layer?.fields.find((f) => f.name === name)?.label || name;
  clear(document.getElementById('import-report'),
    reportBlock(batch, label, { downloadCsv: () => downloadCsv(batch), rollback: () => rollback(batch) }));
}

async function downloadCsv(batch) {
  try { await download(`/imports/${encodeURIComponent(batch.id)}/report.csv`, `${batch.id}-被拒绝的行.csv`); } catch (e) {
    app.toast(`下载失败：${explain(e)}`);
  }
}

async function rollback(batch) {
  if (!window.confirm(`回滚导入 ${batch.id}？本次新增的数据将被删除，被更新的数据恢复原值。`)) return;
  const btn = document.getElementById('import-rollback');
  btn.disabled = true;
  try {
    const r = await api(`/imports/${encodeURIComponent(batch.id)}/rollback`, { method: 'POST' });
    show({ ...batch, state: 'rolled_back' });
    document.getElementById('import-summary').textContent =
      `已回滚：删除 ${fmtNumber(r.deleted || 0)} 行，恢复 ${fmtNumber(r.restored || 0)} 行，重新插入 ${fmtNumber(r.reinserted || 0)} 行。`;
    app.toast('已回滚，地图已更新');
  } catch (e) {
    btn.disabled = false;
    app.toast(`回滚失败：${explain(e)}`, 8000);
  }
}
