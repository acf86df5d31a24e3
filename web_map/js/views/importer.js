// 导入 (editor key): upload a zip / GeoPackage / GeoJSON / CSV, choose layer, CRS and encoding or
// accept the detection, dry-run, read the report, then import, with progress (POST /imports,
// GET /imports/{id}; docs/imports.md).
import { api, explain, getKey, hasRoute } from '../api.js';
import { el, clear, fmtNumber, table } from '../ui.js';

const CRS = [['', '自动识别（.prj）'], ['EPSG:4490', 'CGCS2000 经纬度 (EPSG:4490)'], ['EPSG:4326', 'WGS 84 经纬度 (EPSG:4326)'],
  ['EPSG:4547', 'CGCS2000 3度带 114°E 无带号 (EPSG:4547)'], ['EPSG:4526', 'CGCS2000 3度带 38带 有带号 (EPSG:4526)'],
  ['EPSG:2436', '北京54 3度带 114°E (EPSG:2436)'], ['EPSG:2383', '西安80 3度带 114°E (EPSG:2383)'],
  ['GCJ-02', 'GCJ-02 火星坐标（高德）'], ['BD-09', 'BD-09（百度）']];
const ENCODINGS = [['', '自动识别（.cpg / DBF 标志 / UTF-8 / GB18030）'], ['UTF-8', 'UTF-8'], ['GBK', 'GBK / CP936'], ['GB18030', 'GB18030']];
const STATES = { queued: '排队中', pending: '排队中', running: '导入中', reading: '读取中', validating: '校验中', writing: '写入中',
  done: '完成', succeeded: '完成', completed: '完成', failed: '失败', error: '失败', cancelled: '已取消' };
const FINAL = new Set(['done', 'succeeded', 'completed', 'failed', 'error', 'cancelled']);

let root, app, polling = null;

export function init(a, node) {
  app = a; root = node;
  render();
  window.addEventListener('geoapi:key', render);
}

function render() {
  const enabled = hasRoute('/imports');
  const layerSel = el('select#import-layer', {}, el('option', { value: '' }, '自动（按字段匹配）'),
    app.layers.map((l) => el('option', { value: l.id }, l.title)));
  const opt = (id, list) => el(`select#${id}`, {}, list.map(([v, t]) => el('option', { value: v }, t)));
  clear(root,
    el('h2', {}, '数据导入'),
    !getKey() ? el('div.notice', {}, '导入需要“编辑”及以上权限的 API 密钥：请先点右上角“登录”。') : null,
    !enabled ? el('div.notice#import-disabled', {}, '导入服务尚未启用（服务器没有 /imports 接口）。') : null,
    el('div.row', {}, el('input#import-file', { type: 'file', accept: '.zip,.gpkg,.geojson,.json,.csv,.xlsx' })),
    el('div.row', {}, el('label', {}, '目标图层 ', layerSel)),
    el('div.row', {}, el('label', {}, '坐标系 ', opt('import-crs', CRS))),
    el('div.row', {}, el('label', {}, '编码 ', opt('import-encoding', ENCODINGS))),
    el('div.row', {}, el('label', {}, '方式 ', opt('import-mode', [['append', '追加'], ['upsert', '按编码更新或追加'], ['replace', '替换整个图层']])),
      el('label', {}, '出错时 ', opt('import-on-error', [['abort', '全部不导入'], ['skip', '跳过错误行']]))),
    el('div.row', {},
      el('button#import-dry', { disabled: !enabled || !getKey(), onclick: () => start(true) }, '试导入（只检查）'),
      el('button.primary#import-go', { disabled: !enabled || !getKey(), onclick: () => start(false) }, '正式导入')),
    el('div.progress', {}, el('div#import-bar')),
    el('div#import-state.muted', {}, ''),
    el('div#import-report'));
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
  state.textContent = '上传中…';
  clear(document.getElementById('import-report'));
  try {
    const job = await api('/imports', { method: 'POST', body: form });
    follow(job, dryRun);
  } catch (e) {
    state.textContent = '';
    clear(document.getElementById('import-report'), el('div.error', {}, `导入失败：${explain(e)}`));
  }
}

function follow(job, dryRun) {
  clearTimeout(polling);
  const bar = document.getElementById('import-bar');
  const state = document.getElementById('import-state');
  const step = async (j) => {
    bar.style.width = `${Math.max(0, Math.min(100, Number(j.percent) || 0))}%`;
    state.textContent = `${dryRun ? '试导入' : '导入'} #${j.id}：${STATES[j.state] || j.state}（${fmtNumber(j.percent || 0)}%）`;
    if (j.report) showReport(j.report, dryRun, j.state);
    if (FINAL.has(j.state)) {
      if (!dryRun && !['failed', 'error'].includes(j.state)) app.toast('导入完成，地图已更新');
      return;
    }
    polling = setTimeout(async () => {
      try { step(await api(`/imports/${encodeURIComponent(j.id)}`)); } catch (e) { state.textContent = `进度查询失败：${explain(e)}`; }
    }, 1000);
  };
  step(job);
}

function showReport(r, dryRun, jobState) {
  const box = document.getElementById('import-report');
  const rejected = r.rejected || [];
  clear(box,
    el('h3', {}, dryRun ? '试导入报告（未写入）' : '导入报告'),
    el('div.cards', {},
      card('读取', r.read), card(dryRun ? '可导入' : '已导入', r.imported), card('更新', r.updated), card('跳过', r.skipped),
      card('拒绝', rejected.length)),
    el('p', {}, `编码：${r.encoding || '—'}　坐标系：${r.crs || '—'}`),
    rejected.length ? el('div', {}, el('h3', {}, '被拒绝的行'),
      table(['行', '编码', '原因'], rejected.slice(0, 500).map((x) => [x.row, x.code || '—', (x.reasons || []).map((y) => (typeof y === 'string' ? y : y.message || JSON.stringify(y))).join('；')]), { numeric: [0] }),
      rejected.length > 500 ? el('p.muted', {}, `仅显示前 500 行，共 ${rejected.length} 行`) : null) : null,
    dryRun && FINAL.has(jobState) && !['failed', 'error'].includes(jobState)
      ? el('p', {}, '检查通过的数据可用相同设置点“正式导入”。') : null);
}

function card(label, value) {
  return el('div.card', {}, el('div.label', {}, label), el('div.value', {}, fmtNumber(value ?? 0)));
}
