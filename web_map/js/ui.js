// Small DOM helpers shared by the views.

/** el('div#id.card', {onclick}, child, 'text', …) */
export function el(tag, attrs, ...children) {
  const m = tag.match(/^([a-z0-9]+)((?:[.#][\w-]+)*)$/i);
  if (!m) throw new Error(`bad tag ${tag}`);
  const node = document.createElement(m[1]);
  for (const part of m[2].match(/[.#][\w-]+/g) || []) {
    if (part[0] === '#') node.id = part.slice(1); else node.classList.add(part.slice(1));
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'html') node.innerHTML = v;
    else if (k in node && typeof v !== 'string') node[k] = v;
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node, ...children) { node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false)); return node; }

export function toast(text, ms = 3500) {
  const t = document.getElementById('toast');
  t.textContent = text; t.classList.add('show');
  clearTimeout(toast._timer);
  toast._timer = setTimeout(() => t.classList.remove('show'), ms);
}

export function fmtNumber(v, digits = 0) {
  if (v === null || v === undefined || v === '') return '—';
  const n = Number(v);
  if (!Number.isFinite(n)) return String(v);
  return n.toLocaleString('zh-CN', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString('zh-CN', { hour12: false });
}

export function fmtDistance(m) {
  if (m === null || m === undefined) return '—';
  return m < 1000 ? `${Math.round(m)} 米` : `${(m / 1000).toFixed(2)} 公里`;
}

/** A value as the 电子档案 shows it: booleans as 是/否, lists joined, JSON pretty. */
export function fmtValue(v, field) {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v === 'boolean') return v ? '是' : '否';
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : x)).join('、');
  if (typeof v === 'object') return JSON.stringify(v);
  if (field?.unit) return `${v} ${field.unit}`;
  return String(v);
}

export function table(headers, rows, { onRowClick, numeric = [] } = {}) {
  return el('table.grid', {},
    el('thead', {}, el('tr', {}, headers.map((h, i) => el(numeric.includes(i) ? 'th.num' : 'th', {}, h)))),
    el('tbody', {}, rows.map((r, ri) => el(onRowClick ? 'tr.clickable' : 'tr',
      { onclick: onRowClick ? () => onRowClick(ri) : undefined },
      r.map((c, i) => el(numeric.includes(i) ? 'td.num' : 'td', {}, c))))));
}

export function select(options, value) {
  return el('select', {}, options.map(([v, label]) => el('option', { value: v, selected: v === value }, label)));
}

export function downloadText(filename, text, type = 'text/csv;charset=utf-8') {
  // The BOM makes Excel (the planners' tool) read UTF-8 Chinese correctly.
  const blob = new Blob(['\ufeff', text], { type });
  const a = el('a', { href: URL.createObjectURL(blob), download: filename });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 5000);
}

export function toCsv(headers, rows) {
  const q = (v) => {
    const s = v === null || v === undefined ? '' : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [headers, ...rows].map((r) => r.map(q).join(',')).join('\r\n');
}

/** A stable colour for a string (路长 names, grid codes). */
export function colourFor(text) {
  let h = 0;
  for (const ch of String(text)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return `hsl(${h % 360}, 65%, 45%)`;
}
