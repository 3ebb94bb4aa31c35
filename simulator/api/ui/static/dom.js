// qstash-sim dashboard: the small helpers every module uses (elements, durations, times, the two APIs).
// Every call goes to this server's own control plane (/_sim/...) or its native QStash API (/v2/...).

const tokenMeta = document.querySelector('meta[name="qstash-sim-token"]');
export const TOKEN = tokenMeta ? tokenMeta.content : null;
export const ORIGIN = { "backoff": "QStash backoff", "retry-after": "Retry-After", "upstash-retry-delay": "Upstash-Retry-Delay" };

// What the modules call back into the page with (set by app.js): a full re-read after an action.
export const hooks = { refresh: async () => {}, writeUrl: () => {} };

export const $ = (sel, root = document) => root.querySelector(sel);
export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k === "testid") e.dataset.testid = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined) e.append(kid);
  return e;
}
export function dur(ms) {
  if (ms === null || ms === undefined) return "";
  const neg = ms < 0; ms = Math.abs(ms);
  if (ms < 1000) return (neg ? "-" : "") + ms + " ms";
  const parts = []; let s = Math.floor(ms / 1000);
  for (const [u, n] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]]) {
    if (s >= n) { parts.push(Math.floor(s / n) + " " + u); s %= n; }
  }
  return (neg ? "-" : "") + parts.slice(0, 2).join(" ");
}
export const iso = (ms) => (ms === null || ms === undefined ? "" : new Date(ms).toISOString().replace(".000Z", "Z"));
export const short = (ms) => iso(ms).slice(11, 19);
export function ordinal(n) {
  const tail = n % 100 >= 11 && n % 100 <= 13 ? "th" : ({ 1: "st", 2: "nd", 3: "rd" })[n % 10] || "th";
  return n + tail;
}
export function status(text, error = false) {
  const p = $('[data-testid="status"]'); p.textContent = text; p.classList.toggle("error", error);
}
export function table(testid, heads, rows) {
  return el("table", { class: "grid", testid }, el("thead", {}, el("tr", {}, heads.map((h) => el("th", { text: h })))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c))))));
}

export async function api(method, path, body) {
  const headers = {};
  if (TOKEN) headers["X-Qstash-Sim-Token"] = TOKEN;
  const init = { method, headers };
  if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  const r = await fetch(path, init);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!r.ok) throw new Error(`${method} ${path} -> ${r.status}: ${(data && data.error) || text}`);
  return data;
}
// Native QStash calls act for an account: when the server has no configured tokens, a token names its
// own account, so the account's name is its token; with configured tokens (qstash-sim dev, --token) a 401
// asks for the account's token once and keeps it for this tab.
export async function native(method, path, account) {
  const key = "qstash-sim-token:" + account;
  for (let ask = 0; ask < 2; ask++) {
    const token = sessionStorage.getItem(key) || account;
    const r = await fetch(path, { method, headers: { Authorization: "Bearer " + token } });
    const t = await r.text();
    if (r.ok) return t;
    if (r.status === 401 && ask === 0) {
      const given = window.prompt(`The QStash token of account ${account} (this server has configured tokens):`);
      if (given) { sessionStorage.setItem(key, given.trim()); continue; }
    }
    throw new Error(`${method} ${path} -> ${r.status}: ${t}`);
  }
  throw new Error(`${method} ${path}: no token for account ${account}`);
}
export async function act(label, fn) {
  try { status(label + "…"); await fn(); status(label + ": done"); await hooks.refresh(); }
  catch (e) { status(label + ": " + e.message, true); }
}
