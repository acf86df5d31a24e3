// Login: the API key kept in localStorage, and who it belongs to (GET /auth/whoami). The role
// decides which edit controls the page shows; the server checks every write again regardless.
import { api, explain, getKey, setKey, hasRoute, ApiError } from './api.js';
import { toast } from './ui.js';

const ROLES = ['viewer', 'dispatcher', 'editor', 'admin'];
export const ROLE_LABELS = { viewer: '查看', dispatcher: '调度', editor: '编辑', admin: '管理员' };
const ANONYMOUS = { role: 'viewer', name: 'anonymous' };

let user = ANONYMOUS;

/** The logged-in user {role, name}; anonymous viewer without a key. */
export function currentUser() { return user; }

/** True when the current user holds `role` or a stronger one. */
export function can(role) { return ROLES.indexOf(user.role) >= ROLES.indexOf(role); }

async function identify() {
  if (!getKey()) return { ...ANONYMOUS, state: 'anonymous' };
  // A server without /auth/whoami: trust the key for display; the server still checks writes.
  if (!hasRoute('/auth/whoami')) return { role: 'editor', name: `${getKey().slice(0, 11)}…`, state: 'unknown' };
  try {
    return { ...(await api('/auth/whoami')), state: 'ok' };
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return { ...ANONYMOUS, state: 'bad-key' };
    return { ...ANONYMOUS, state: 'error', message: explain(e) };
  }
}

/** Ask who the key belongs to, update the 登录 button and the body's role classes, tell the views. */
export async function refreshUser() {
  const who = await identify();
  user = { role: who.role, name: who.name };
  const btn = document.getElementById('login-btn');
  if (who.state === 'ok' || who.state === 'unknown') btn.textContent = `${ROLE_LABELS[who.role] || who.role}: ${who.name}`;
  else if (who.state === 'bad-key') btn.textContent = '登录（密钥无效）';
  else btn.textContent = '登录（只读）';
  btn.title = who.state === 'bad-key' ? '密钥无效或已吊销，请重新登录' : who.message || '';
  document.body.dataset.role = user.role;
  document.body.classList.toggle('logged-in', who.state === 'ok' || who.state === 'unknown');
  for (const role of ['dispatcher', 'editor', 'admin']) document.body.classList.toggle(`can-${role}`, can(role));
  if (who.state === 'bad-key') toast('密钥无效或已吊销，请重新登录', 6000);
  window.dispatchEvent(new CustomEvent('geoapi:user', { detail: user }));
  return user;
}

export function wireLogin() {
  const btn = document.getElementById('login-btn');
  const dialog = document.getElementById('login-dialog');
  window.addEventListener('geoapi:key', refreshUser);
  btn.addEventListener('click', () => {
    document.getElementById('login-key').value = '';
    document.getElementById('login-msg').textContent = getKey()
      ? `当前已登录：${ROLE_LABELS[user.role] || user.role} ${user.name}` : '';
    dialog.showModal();
  });
  dialog.addEventListener('close', async () => {
    if (dialog.returnValue === 'save') {
      const key = document.getElementById('login-key').value.trim();
      if (!/^gk_/.test(key)) { toast('密钥格式不对：应以 gk_ 开头'); return; }
      setKey(key);
    } else if (dialog.returnValue === 'logout') {
      setKey('');
    } else return;
    await refreshUser();
    if (document.body.classList.contains('logged-in')) toast(`已登录：${ROLE_LABELS[user.role]} ${user.name}`);
    else if (!getKey()) toast('已退出登录，现为只读');
  });
  return refreshUser();
}
