// The import report as the 导入 view shows it: counts, what was detected (encoding, CRS, field
// mapping), rejected rows with reasons, and the actions on the batch (rejected-rows CSV, rollback).
import { el, fmtNumber, table } from '../ui.js';

export const STATES = { queued: '排队中', running: '导入中', done: '完成', dry_run: '试导入完成', failed: '失败',
  refused: '被拒绝', rolled_back: '已回滚' };
export const FINAL = new Set(['done', 'dry_run', 'failed', 'refused', 'rolled_back']);

const ENCODING_REASONS = { override: '手动指定', cpg: '来自 .cpg 文件', ldid: '来自 DBF 语言标志',
  'utf8-strict': '内容是合法的 UTF-8', fallback: '不是 UTF-8，按 GB18030（兼容 GBK）读取', bom: '来自 BOM 标记', format: '文件格式规定' };
const CRS_REASONS = { prj: '来自 .prj 文件', given: '手动指定', dataset: '数据自带', 'zone prefix fitted': '按带号修正' };

/** Where the encoding and the CRS came from, in words. */
export function detected(provenance) {
  const enc = provenance?.encoding, crs = provenance?.crs;
  if (!enc && !crs) return null;
  const crsReason = crs ? String(crs.reason || '').split(', ').map((r) => CRS_REASONS[r] || r).join('，') : '';
  return el('div.detected#import-detected', {},
    enc ? el('div', {}, '编码：', el('b', {}, enc.encoding.toUpperCase()), `（${ENCODING_REASONS[enc.reason] || enc.reason}）`) : null,
    crs ? el('div', {}, '坐标系：', el('b', {}, crs.crs), ` ${crs.name || ''}（${crsReason}）`) : null,
    provenance.transform ? el('div', {}, `转换参数：${provenance.transform}`) : null,
    provenance.axes_swapped ? el('div', {}, 'X/Y 已按城市范围自动对调') : null,
    provenance.dataset ? el('div.muted', {}, `读取的数据：${provenance.dataset}`) : null);
}

/** The whole report block for one batch; `actions` holds the CSV and rollback handlers. */
export function reportBlock(batch, fieldLabel, actions) {
  const r = batch.report || {};
  const dry = batch.state === 'dry_run' || r.dry_run;
  const rejected = r.rejected || [];
  const nRejected = r.rejected_count ?? rejected.length;
  if (r.code && r.rows_read === undefined) {   // refused before any row was read
    return [el('div.error#import-summary', {}, `无法导入：${r.message || r.code}`)];
  }
  // A dry run counts nothing as imported: what would be is every read row not skipped or rejected.
  const importable = dry ? Math.max(0, (r.rows_read || 0) - (r.skipped || 0) - nRejected) : r.imported;
  const mapping = Object.entries(r.mapping || {}).map(([col, f]) => `${col} → ${fieldLabel(f)}`).join('，');
  return [
    el('h3', {}, dry ? '试导入报告（未写入数据）' : '导入报告'),
    el('div#import-summary', { class: nRejected ? 'error' : '' }, summary(batch.state, r, nRejected, importable)),
    el('div.cards#import-counts', {},
      card('读取行数', r.rows_read), card(dry ? '可导入' : '已导入', importable), card('更新', r.updated),
      card('跳过（空行）', r.skipped), card('拒绝', nRejected), card('几何已修复', r.repaired)),
    detected(r.provenance),
    mapping ? el('p', { style: 'font-size:13px' }, `字段对应：${mapping}`) : null,
    r.unmapped_columns?.length ? el('p.muted', {}, `未对应的列（存入扩展属性）：${r.unmapped_columns.join('，')}`) : null,
    nRejected ? el('div#import-rejected', {}, el('h3', {}, '被拒绝的行'),
      table(['行号', '编码', '原因'], rejected.slice(0, 500).map((x) => [x.row, x.code || '—', (x.reasons || []).join('；')]),
        { numeric: [0] }),
      nRejected > 500 ? el('p.muted', {}, `仅显示前 500 行，共 ${nRejected} 行；完整清单请下载 CSV`) : null,
      el('div.row', {}, el('button#import-csv', { onclick: actions.downloadCsv }, '下载被拒绝行（CSV）'))) : null,
    batch.state === 'done' ? el('div.row.needs-editor', {},
      el('button#import-rollback', { onclick: actions.rollback }, '回滚本次导入'),
      el('span.muted', { style: 'font-size:12px' }, '删除本次新增的数据，恢复被更新的数据')) : null,
  ];
}

function summary(state, r, nRejected, importable) {
  if (state === 'failed') return `导入失败，未写入任何数据：${nRejected} 行有错误（出错时“全部不导入”）。可修正后重新上传，或选择“跳过错误行”。`;
  if (state === 'dry_run') {
    return nRejected ? `检查发现 ${nRejected} 行有错误。按当前设置正式导入时${r.on_error === 'skip' ? '将跳过这些行' : '将不写入任何数据'}。`
      : `检查通过：${fmtNumber(importable)} 行可导入。可用相同设置点“正式导入”。`;
  }
  if (state === 'rolled_back') return '本次导入已回滚。';
  if (state === 'done') return `导入完成：新增 ${fmtNumber(r.imported)} 行，更新 ${fmtNumber(r.updated || 0)} 行${nRejected ? `，跳过 ${nRejected} 个错误行` : ''}。`;
  return '';
}

function card(label, value) {
  return el('div.card', {}, el('div.label', {}, label), el('div.value', {}, fmtNumber(value ?? 0)));
}
