// HTTP access to geoapi: the API base (the parent of /map/), the API key, JSON with clear errors.

const KEY_STORAGE = 'geoapi.apiKey';

/** The API root, e.g. "http://host:8000" (or with a proxy prefix). */
export const API = new URL('..', document.baseURI).href.replace(/\/$/, '');

export function getKey() { return localStorage.getItem(KEY_STORAGE) || ''; }
export function setKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key.trim()); else localStorage.removeItem(KEY_STORAGE);
}

export class ApiError extends Error {
  constructor(status, body, url) {
    super(body?.detail || `HTTP ${status}`);
    this.status = status; this.body = body; this.url = url;
  }
}

export function url(path, params) {
  const u = new URL(API + path);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, v);
  }
  return u.href;
}

export function authHeaders(extra = {}) {
  const key = getKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

/** fetch + JSON; throws ApiError with the server's {code, detail} on a non-2xx answer. */
export async function api(path, opts) {
  return (await request(path, opts)).data;
}

/** Like api(), but also gives the response headers (the ETag a PATCH sends back as If-Match). */
export async function request(path, { params, method = 'GET', body, json, headers } = {}) {
  const h = authHeaders(headers);
  let payload = body;
  if (json !== undefined) { payload = JSON.stringify(json); h['Content-Type'] = 'application/json'; }
  const u = url(path, params);
  const res = await fetch(u, { method, body: payload, headers: h });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text.slice(0, 200) }; }
  if (!res.ok) throw new ApiError(res.status, data, u);
  return { data, headers: res.headers };
}

/** Save a file the API serves (with the key, so it works when reads need one). */
export async function download(path, filename) {
  const res = await fetch(url(path), { headers: authHeaders() });
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null), url(path));
  const href = URL.createObjectURL(await res.blob());
  const a = Object.assign(document.createElement('a'), { href, download: filename });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 5000);
}

// The server's routes from /openapi.json: endpoints other parts of geoapi add (nearest,
// coverage, alarms, imports …) may be absent; the page asks first instead of logging 404s.
let routePatterns = null;

export async function loadRoutes() {
  try {
    const doc = await api('/openapi.json');
    routePatterns = Object.keys(doc.paths || {}).map((p) =>
      new RegExp('^' + p.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+') + '$'));
  } catch { routePatterns = null; }
}

export function hasRoute(path) {
  return routePatterns === null || routePatterns.some((re) => re.test(path));
}

/** Like api(), but an endpoint that does not exist gives null (asked of /openapi.json, or a 404 on the route). */
export async function optional(path, opts) {
  if (!hasRoute(path)) return null;
  try {
    return await api(path, opts);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 405 || (e.status === 404 && isMissingRoute(e)))) return null;
    throw e;
  }
}

// FastAPI's own 404 for an unknown route is {"detail": "Not Found"}; ours carry a code.
function isMissingRoute(e) { return !e.body || !e.body.code || e.body.detail === 'Not Found'; }

export function explain(e) {
  if (e instanceof ApiError) {
    if (e.status === 401) return '需要登录：请点右上角“登录”并粘贴 API 密钥';
    if (e.status === 403) return `权限不足：${e.body?.detail || ''}`;
    if (e.status === 412) return '该记录已被他人修改，请刷新';
    const extra = (e.body?.errors || []).map((x) => x.message || JSON.stringify(x)).join('；');
    return `${e.body?.detail || e.message}${extra ? '（' + extra + '）' : ''}`;
  }
  return String(e?.message || e);
}
