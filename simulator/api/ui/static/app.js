// qstash-sim dashboard: plain JS, no framework, no build step. Every call goes to this server's own
// control plane (/_sim/...) or native QStash API (/v2/...); live updates come from /_sim/events/stream.
"use strict";

const ROW_H = 28;
const FILTERS = ["state", "destination", "queue", "schedule", "label", "account", "surface", "q"];
const ORIGIN = { "backoff": "QStash backoff", "retry-after": "Retry-After", "upstash-retry-delay": "Upstash-Retry-Delay" };
const BREAK_MS = 10 * 60 * 1000; // gaps longer than this are compressed into a "⋯ 6 h 7 m ⋯" break
const tokenMeta = document.querySelector('meta[name="qstash-sim-token"]');
const TOKEN = tokenMeta ? tokenMeta.content : null;

const S = {
  view: "messages", seed: null, clockKind: null, now: null, virtual: true,
  accounts: {}, messages: [], byId: new Map(), shown: [], selected: null,
  journal: [], attempts: new Map(), creators: new Map(), children: new Map(), dedups: new Map(), lastSeq: 0,
};

// ------------------------------------------------------------------ helpers

const $ = (sel, root = document) => root.querySelector(sel);
function el(tag, attrs = {}, ...kids) {
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
function dur(ms) {
  if (ms === null || ms === undefined) return "";
  const neg = ms < 0; ms = Math.abs(ms);
  if (ms < 1000) return (neg ? "-" : "") + ms + " ms";
  const parts = []; let s = Math.floor(ms / 1000);
  for (const [u, n] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]]) {
    if (s >= n) { parts.push(Math.floor(s / n) + " " + u); s %= n; }
  }
  return (neg ? "-" : "") + parts.slice(0, 2).join(" ");
}
const iso = (ms) => (ms === null || ms === undefined ? "" : new Date(ms).toISOString().replace(".000Z", "Z"));
const short = (ms) => iso(ms).slice(11, 19);
function status(text, error = false) {
  const p = $('[data-testid="status"]'); p.textContent = text; p.classList.toggle("error", error);
}

async function api(method, path, body) {
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
async function native(method, path, account) {
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
async function act(label, fn) {
  try { status(label + "…"); await fn(); status(label + ": done"); await refresh(); }
  catch (e) { status(label + ": " + e.message, true); }
}

// ------------------------------------------------------------------ URL state

function readUrl() {
  const q = new URLSearchParams(location.search);
  S.view = q.get("view") || "messages";
  S.selected = q.get("msg");
  const form = $('[data-testid="filters"]');
  for (const f of FILTERS) form.elements[f].value = q.get(f) || "";
}
function writeUrl() {
  const q = new URLSearchParams();
  if (S.view !== "messages") q.set("view", S.view);
  const form = $('[data-testid="filters"]');
  for (const f of FILTERS) if (form.elements[f].value) q.set(f, form.elements[f].value);
  if (S.selected) q.set("msg", S.selected);
  const s = q.toString();
  history.replaceState(null, "", location.pathname + (s ? "?" + s : ""));
}

// ------------------------------------------------------------------ data

const FULL = 10000; // messages per account GET /_sim/state shows at most
async function refresh(limit = FULL) {
  const [clock, state] = await Promise.all([api("GET", "/_sim/clock"), api("GET", "/_sim/state?limit=" + limit)]);
  S.partial = limit < FULL && !!state.truncated;
  S.now = clock.now; S.virtual = clock.virtual;
  S.accounts = state.accounts;
  const all = [];
  for (const [name, acc] of Object.entries(state.accounts)) for (const m of acc.messages) { m.account = name; m.order = all.length; all.push(m); }
  all.sort((a, b) => b.createdAt - a.createdAt || b.order - a.order); // newest first, as created
  S.messages = all;
  S.byId = new Map(all.map((m) => [m.messageId, m]));
  S.truncated = !!state.truncated;
  renderClock(); applyFilters(); renderDetail(); renderView();
}
function ingest(e) {
  S.lastSeq = Math.max(S.lastSeq, e.seq);
  S.journal.push(e);
  if (S.journal.length > 20000) S.journal.splice(0, S.journal.length - 20000);
  if (e.kind === "attempt" && e.messageId) {
    if (!S.attempts.has(e.messageId)) S.attempts.set(e.messageId, []);
    S.attempts.get(e.messageId).push(e);
  }
  if (e.sourceMessageId && e.messageId) {
    const kids = S.children.get(e.sourceMessageId) || new Set();
    kids.add(e.messageId); S.children.set(e.sourceMessageId, kids);
  }
  if (e.kind === "request" || e.kind === "fire") {
    for (const id of e.messageIds || []) {
      if (!S.creators.has(id)) S.creators.set(id, e);
      else if (e.kind === "request") S.dedups.set(id, (S.dedups.get(id) || []).concat([e]));
    }
  }
}
function surfaceOf(m) {
  if (m.scheduleId) return "schedule";
  const c = S.creators.get(m.messageId);
  if (!c || !c.path) return "";
  return c.path.startsWith("/v1/") ? "sapiom" : c.path.startsWith("/v2/") ? "qstash" : "";
}

// ------------------------------------------------------------------ live updates

// A burst of journal events is one re-read, and re-reads never take more than a third of the time.
let refreshTimer = null;
let refreshCost = 0;
function soon() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(async () => {
    const t = performance.now();
    try { await refresh(); } catch (e) { status(e.message, true); }
    refreshCost = performance.now() - t; refreshTimer = null;
  }, Math.max(150, 2 * refreshCost));
}

async function listen() {
  const live = $('[data-testid="live"]');
  for (;;) {
    try {
      const headers = { Accept: "text/event-stream" };
      if (TOKEN) headers["X-Qstash-Sim-Token"] = TOKEN;
      const r = await fetch("/_sim/events/stream?since=" + S.lastSeq, { headers });
      if (!r.ok) throw new Error("event stream: " + r.status);
      live.textContent = "live"; live.classList.add("on");
      const reader = r.body.getReader(); const dec = new TextDecoder(); let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) { onEvent(buf.slice(0, cut)); buf = buf.slice(cut + 2); }
      }
    } catch (e) { /* the server stopped or restarted: try again */ }
    live.textContent = "reconnecting"; live.classList.remove("on");
    await new Promise((ok) => setTimeout(ok, 2000));
  }
}
function onEvent(block) {
  let kind = "message"; let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) kind = line.slice(7);
    else if (line.startsWith("data: ")) data += line.slice(6);
  }
  if (kind === "journal") { ingest(JSON.parse(data)); soon(); }
  else if (kind === "clock") { const c = JSON.parse(data); S.now = c.now; renderClock(); }
  else if (kind === "reset") { S.journal = []; S.attempts.clear(); S.creators.clear(); S.children.clear(); S.dedups.clear(); S.lastSeq = 0; soon(); }
}

// ------------------------------------------------------------------ header and clock

function renderClock() {
  $('[data-testid="virtual-time"]').textContent = iso(S.now);
  $('[data-testid="clock-kind"]').textContent = S.clockKind || (S.virtual ? "virtual" : "real");
  $('[data-testid="seed"]').textContent = S.seed === null ? "…" : String(S.seed);
}
function tickWall() { $('[data-testid="wall-time"]').textContent = iso(Math.floor(Date.now() / 1000) * 1000); }
setInterval(tickWall, 1000);

// The next instant something is due: a first attempt, a retry or a schedule's fire (from the state read).
function nextEvent() {
  let next = null;
  const due = (t) => { if (t !== null && t !== undefined && (next === null || t < next)) next = t; };
  const paused = new Set();
  for (const [a, acc] of Object.entries(S.accounts)) for (const q of acc.queues) if (q.paused) paused.add(a + "/" + q.name);
  for (const m of S.messages) {
    if (m.queueName && paused.has(m.account + "/" + m.queueName)) continue;
    if (m.state === "retry") due(m.nextDeliveryTime);
    else if (m.state === "pending" && !(m.history.length && m.history[m.history.length - 1].state === "ACTIVE")) due(Math.max(m.notBefore, S.now));
  }
  for (const acc of Object.values(S.accounts)) for (const sc of acc.schedules) if (!sc.isPaused) due(sc.nextScheduleTime);
  return next;
}

// ------------------------------------------------------------------ message list (virtualised)

function matches(m, f) {
  if (f.state && m.state !== f.state) return false;
  if (f.destination && !m.url.includes(f.destination)) return false;
  if (f.queue && m.queueName !== f.queue) return false;
  if (f.schedule && m.scheduleId !== f.schedule) return false;
  if (f.label && !(m.labels || []).includes(f.label)) return false;
  if (f.account && m.account !== f.account) return false;
  if (f.surface && surfaceOf(m) !== f.surface) return false;
  if (f.q) {
    const hay = (m.messageId + " " + m.url + " " + (m.body || m.bodyBase64 || "")).toLowerCase();
    if (!hay.includes(f.q.toLowerCase())) return false;
  }
  return true;
}
function applyFilters() {
  const form = $('[data-testid="filters"]');
  const f = {};
  for (const k of FILTERS) f[k] = form.elements[k].value.trim();
  S.shown = S.messages.filter((m) => matches(m, f));
  const list = $('[data-testid="message-list"]');
  $(".spacer", list).style.height = S.shown.length * ROW_H + "px";
  $('[data-testid="message-count"]').textContent =
    `${S.shown.length} of ${S.messages.length} messages` +
    (S.partial ? " (the newest; reading the rest…)" : S.truncated ? " (the newest 10000 per account)" : "");
  paintRows();
}
function paintRows() {
  const list = $('[data-testid="message-list"]');
  const first = Math.max(0, Math.floor(list.scrollTop / ROW_H) - 5);
  const last = Math.min(S.shown.length, first + Math.ceil(list.clientHeight / ROW_H) + 10);
  for (const r of list.querySelectorAll(".row")) r.remove();
  const frag = document.createDocumentFragment();
  for (let i = first; i < last; i++) {
    const m = S.shown[i];
    const row = el("div", {
      class: "row", role: "option", id: "row-" + m.messageId, testid: "message-row",
      "data-id": m.messageId, "data-state": m.state, "aria-selected": String(m.messageId === S.selected),
      onclick: () => select(m.messageId),
    },
    el("span", {}, el("span", { class: "badge s-" + m.state, text: m.state })),
    el("span", { class: "id", text: m.messageId, title: m.messageId }),
    el("span", { text: m.url, title: m.url }),
    el("span", { class: "mono", text: short(m.createdAt) }),
    el("span", { text: String(m.retried) }));
    row.style.top = i * ROW_H + "px";
    frag.append(row);
  }
  list.append(frag);
  if (S.selected) list.setAttribute("aria-activedescendant", "row-" + S.selected);
}
function select(id, focusDetail = false) {
  S.selected = id; writeUrl(); paintRows(); renderDetail();
  if (focusDetail) $('[data-testid="detail"]').focus();
}
function onListKey(ev) {
  const i = S.shown.findIndex((m) => m.messageId === S.selected);
  let j = i;
  if (ev.key === "ArrowDown") j = Math.min(S.shown.length - 1, i + 1);
  else if (ev.key === "ArrowUp") j = Math.max(0, i - 1);
  else if (ev.key === "Home") j = 0;
  else if (ev.key === "End") j = S.shown.length - 1;
  else if (ev.key === "Enter" && i >= 0) { select(S.selected, true); ev.preventDefault(); return; }
  else return;
  ev.preventDefault();
  if (j < 0 || !S.shown[j]) return;
  const list = ev.currentTarget;
  if (j * ROW_H < list.scrollTop) list.scrollTop = j * ROW_H;
  else if ((j + 1) * ROW_H > list.scrollTop + list.clientHeight) list.scrollTop = (j + 1) * ROW_H - list.clientHeight;
  select(S.shown[j].messageId);
}

// ------------------------------------------------------------------ timeline

// The steps of one message's life: its history, the DLQ entry, the backoff gaps with their origin.
function steps(m) {
  const out = [];
  const attempts = S.attempts.get(m.messageId) || [];
  for (const h of m.history) out.push({ t: h.time, state: h.state, h });
  if (m.dlqId) { const f = m.history.findLast((h) => h.state === "FAILED"); out.push({ t: f ? f.time : m.createdAt, state: "DLQ", dlqId: m.dlqId }); }
  const created = out.find((s) => s.state === "CREATED");
  if (created && m.notBefore > m.createdAt) created.delayUntil = m.notBefore;
  for (const s of out) {
    if (s.state !== "RETRY") continue;
    const a = attempts.find((e) => e.retried === s.h.retried && e.outcome === "retry");
    s.origin = a && a.detail ? a.detail.retry_origin : null;
    s.rule = a ? a.rule : null;
  }
  return out;
}
function gapEl(ms, cls, label) {
  const big = ms > BREAK_MS;
  const width = big ? 120 : Math.max(24, Math.min(160, 24 + Math.sqrt(ms / 1000) * 12));
  const g = el("div", { class: "gap " + cls + (big ? " break" : ""), testid: big ? "gap-break" : "gap-" + cls },
    el("span", { class: "label", text: big ? `⋯ ${dur(ms)} ⋯` + (label ? " · " + label : "") : label || dur(ms) }));
  g.style.minWidth = width + "px";
  return g;
}
function lane(name, testid, m) {
  const row = el("div", { class: "lane", testid, "data-id": m.messageId }, el("span", { class: "lane-name", text: name }));
  const ss = steps(m);
  let prev = null;
  for (const s of ss) {
    if (prev) {
      const gap = s.t - prev.t;
      if (prev.state === "RETRY") {
        const n = prev.h.retried + 1;
        const origin = ORIGIN[prev.origin] || "backoff (origin not recorded)";
        row.append(gapEl(gap, "backoff", `retry ${n} in ${dur(gap)} · ${origin}`));
      } else if (prev.delayUntil) {
        row.append(gapEl(gap, "delay", `not before ${short(prev.delayUntil)} (delay ${dur(prev.delayUntil - prev.t)})`));
      } else if (gap > 0) row.append(gapEl(gap, "idle", ""));
    }
    const node = el("div", { class: "node", testid: "step", "data-state": s.state, title: iso(s.t) },
      el("span", { class: "badge s-" + s.state, text: s.state === "DLQ" ? "DLQ " + s.dlqId : s.state }),
      el("time", { datetime: iso(s.t), text: "+" + dur(s.t - m.createdAt || 0) || "+0 ms" }),
      s.h && s.h.responseStatus ? el("span", { class: "mono", text: String(s.h.responseStatus) }) : null);
    row.append(node);
    prev = s;
  }
  if (prev && prev.state === "RETRY" && S.now !== null && m.nextDeliveryTime) {
    row.append(gapEl(Math.max(0, m.nextDeliveryTime - prev.t), "backoff",
      `retry ${prev.h.retried + 1} at ${short(m.nextDeliveryTime)} · ${ORIGIN[prev.origin] || "backoff"}`));
  } else if (prev && m.state === "pending" && S.now !== null) { // still waiting: up to now, or to its not-before
    const until = Math.max(S.now, m.notBefore);
    row.append(gapEl(Math.max(0, until - prev.t), m.notBefore > S.now ? "delay" : "wait",
      m.notBefore > S.now ? `not before ${short(m.notBefore)} (in ${dur(m.notBefore - S.now)})` : "waiting"));
    row.append(el("div", { class: "node", testid: "step", "data-state": "NOW" }, el("span", { class: "badge", text: "now" }),
      el("time", { datetime: iso(S.now), text: short(S.now) })));
  }
  return row;
}
function timeline(m) {
  const box = el("div", { class: "timeline", testid: "timeline", role: "group", "aria-label": "timeline on virtual time" });
  const c = S.creators.get(m.messageId);
  if (c) box.append(el("div", { class: "lane", testid: "lane-request" }, el("span", { class: "lane-name", text: "request" }),
    el("span", { class: "mono", text: `${c.kind === "fire" ? "cron fire" : c.method + " " + c.path} → ${c.status ?? ""} at ${short(c.time)}` })));
  box.append(lane("message", "lane-message", m));
  for (const id of S.children.get(m.messageId) || []) {
    const child = S.byId.get(id);
    if (child) box.append(lane("callback", "lane-callback", child));
  }
  return box;
}

// ------------------------------------------------------------------ why

function why(m) {
  const out = [];
  const attempts = S.attempts.get(m.messageId) || [];
  const acc = S.accounts[m.account] || { queues: [] };
  const queue = m.queueName ? acc.queues.find((q) => q.name === m.queueName) : null;
  const last = m.history[m.history.length - 1];
  if (m.state === "pending" || m.state === "retry") {
    if (m.notBefore > S.now && m.state === "pending") out.push(`Not before ${iso(m.notBefore)} (in ${dur(m.notBefore - S.now)}).`);
    if (queue && queue.paused) out.push(`Queue ${queue.name} is paused: resume it to deliver.`);
    else if (queue) out.push(`In queue ${queue.name} (parallelism ${queue.parallelism}, lag ${queue.lag}).`);
    if (m.state === "retry" && m.nextDeliveryTime) {
      const r = steps(m).findLast((s) => s.state === "RETRY");
      const origin = r && r.origin ? ORIGIN[r.origin] : "backoff";
      out.push(`Retry ${m.retried} of ${m.maxRetries} at ${iso(m.nextDeliveryTime)} (in ${dur(m.nextDeliveryTime - S.now)}), delay from ${origin}.`);
    }
    if (last && last.state === "ACTIVE") out.push("An attempt is in flight.");
    if (!out.length && m.state === "pending") out.push("Due now: settle or advance the clock to deliver it.");
  }
  const lastErr = m.history.findLast((h) => h.state === "ERROR");
  if (m.state !== "delivered" && lastErr) {
    const said = lastErr.error && lastErr.error !== `destination answered ${lastErr.responseStatus}` ? ` (${lastErr.error})` : "";
    out.push(`Last response: ${lastErr.responseStatus ?? "no answer"}${said}.`);
  }
  if (m.state === "failed") out.push(`Failed after ${m.history.filter((h) => h.state === "ERROR").length} attempt(s)` + (m.dlqId ? `; in the DLQ as ${m.dlqId}.` : "."));
  if (m.state === "delivered") { const d = m.history.findLast((h) => h.state === "DELIVERED"); out.push(`Delivered at ${iso(d && d.time)} with ${d && d.responseStatus}.`); }
  if (m.state === "cancelled") out.push("Cancelled before delivery.");
  for (const a of attempts) if (a.rule) out.push(`Attempt ${a.retried + 1}: injected by scenario rule ${a.rule}.`);
  for (const d of S.dedups.get(m.messageId) || []) out.push(`${d.method} ${d.path} at ${short(d.time)} was deduplicated into this message.`);
  return el("ul", { class: "why", testid: "why" }, out.map((t) => el("li", { testid: "why-item", text: t })));
}

// ------------------------------------------------------------------ inspector

const b64url = (s) => { s = s.replace(/-/g, "+").replace(/_/g, "/"); while (s.length % 4) s += "="; return atob(s); };
const toB64url = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
function bodyBytes(d) {
  if (d.bodyBase64) return Uint8Array.from(atob(d.bodyBase64), (c) => c.charCodeAt(0));
  return new TextEncoder().encode(d.body || "");
}
async function verify(jwt, d, keys) {
  const [h, p, sig] = jwt.split(".");
  const claims = JSON.parse(b64url(p));
  const problems = [];
  if (claims.iss !== "Upstash") problems.push("iss is not Upstash");
  if (claims.sub !== d.url) problems.push(`sub ${claims.sub} is not the URL ${d.url}`);
  if (!crypto.subtle) return { claims, verdict: "cannot check here (no Web Crypto)" };
  const hash = toB64url(await crypto.subtle.digest("SHA-256", bodyBytes(d))).replace(/=+$/, "");
  if (claims.body.replace(/=+$/, "") !== hash) problems.push("body hash differs from the body sent");
  let keyName = null;
  for (const [name, key] of [["current", keys.current], ["next", keys.next]]) {
    const k = await crypto.subtle.importKey("raw", new TextEncoder().encode(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const mac = toB64url(await crypto.subtle.sign("HMAC", k, new TextEncoder().encode(h + "." + p)));
    if (mac === sig) { keyName = name; break; }
  }
  if (!keyName) problems.push("signed by neither the current nor the next key (rotated since?)");
  return { claims, verdict: problems.length ? "a Receiver would refuse it: " + problems.join("; ") : `a Receiver would accept it (the ${keyName} signing key)` };
}
function curl(d) {
  const q = (s) => "'" + String(s).replace(/'/g, "'\\''") + "'";
  const hs = Object.entries(d.headers).map(([k, v]) => ` -H ${q(k + ": " + v)}`).join("");
  return `curl -X ${d.method} ${q(d.url)}${hs}` + (d.body ? ` --data-binary ${q(d.body)}` : "");
}
async function deliveriesOf(m) {
  const out = []; let cursor = null;
  for (let page = 0; page < 20; page++) {
    const q = new URLSearchParams({ account: m.account, url: m.url, limit: "1000" });
    if (cursor) q.set("cursor", cursor);
    const r = await api("GET", "/_sim/deliveries?" + q);
    out.push(...r.deliveries.filter((d) => d.messageId === m.messageId));
    if (!r.cursor) break; cursor = r.cursor;
  }
  return out;
}
async function inspector(m, box) {
  const deliveries = await deliveriesOf(m);
  const keys = (S.accounts[m.account] || {}).signingKeys || {};
  const attempts = S.attempts.get(m.messageId) || [];
  box.replaceChildren();
  if (!deliveries.length) box.append(el("p", { class: "meta", text: "No attempt yet." }));
  for (const d of deliveries) {
    const a = attempts.find((e) => e.retried === d.retried);
    const sig = d.headers["Upstash-Signature"];
    const v = sig ? await verify(sig, d, keys).catch((e) => ({ claims: {}, verdict: "cannot decode: " + e.message })) : null;
    const text = curl(d);
    const area = el("textarea", { class: "mono", testid: "curl-text", rows: "3", cols: "80", readonly: true, "aria-label": "curl command", hidden: true });
    area.value = text;
    const resp = `${d.status ?? "no answer"}${d.error ? " · " + d.error : ""}${a ? " · " + a.outcome : ""}${a && a.rule ? " · scenario rule " + a.rule : ""}${d.virtual ? " · virtual destination" : ""}`;
    box.append(el("details", { class: "attempt", testid: "attempt", "data-retried": String(d.retried) },
      el("summary", { text: `attempt ${d.retried + 1} at ${iso(d.time)} → ${d.status ?? "no answer"}` }),
      el("div", { class: "body" },
        el("h3", { text: "request sent" }),
        el("pre", { testid: "attempt-request", text: `${d.method} ${d.url}\n` + Object.entries(d.headers).map(([k, val]) => `${k}: ${val}`).join("\n") + "\n\n" + (d.body || d.bodyBase64 || "") }),
        el("h3", { text: "response" }), el("pre", { testid: "attempt-response", text: resp }),
        v ? el("h3", { text: "Upstash-Signature" }) : null,
        v ? el("pre", { testid: "signature-claims", text: JSON.stringify(v.claims, null, 2) }) : null,
        v ? el("p", { testid: "signature-verdict", class: v.verdict.includes("accept") ? "ok" : "bad", text: v.verdict }) : null,
        el("button", { type: "button", testid: "copy-curl", onclick: async () => {
          area.hidden = false; area.select();
          try { await navigator.clipboard.writeText(text); status("curl command copied"); } catch { status("curl command selected: copy it with Ctrl-C"); }
        } }, "Copy as curl"), area)));
  }
  const dlq = m.dlqId ? ((S.accounts[m.account] || {}).dlq || []).find((e) => e.dlqId === m.dlqId) : null;
  if (dlq) box.append(el("h3", { text: "last response (DLQ)" }),
    el("pre", { testid: "dlq-response", text: `${dlq.responseStatus ?? ""}\n` + Object.entries(dlq.responseHeader || {}).map(([k, v]) => `${k}: ${v.join(", ")}`).join("\n") + "\n\n" + (dlq.responseBody || dlq.responseBodyBase64 || "") }));
}

// ------------------------------------------------------------------ detail

let inspectFor = null;
let shownSig = null;
function renderDetail() {
  const box = $('[data-testid="detail"]');
  const m = S.selected ? S.byId.get(S.selected) : null;
  // Live updates re-read the state often: leave the panel (and the attempts opened in it) alone until
  // something it shows changed.
  const sig = m ? [m.messageId, m.state, m.history.length, m.dlqId, S.now, (S.attempts.get(m.messageId) || []).length,
    [...(S.children.get(m.messageId) || [])].map((id) => (S.byId.get(id) || {}).history?.length).join(),
    m.queueName ? JSON.stringify(((S.accounts[m.account] || {}).queues || []).find((q) => q.name === m.queueName)) : ""].join("|") : null;
  if (sig !== null && sig === shownSig) return;
  shownSig = sig;
  if (!m) { box.replaceChildren(el("p", { class: "empty", text: S.selected ? `Message ${S.selected} is not shown (dropped or filtered).` : "Pick a message: its timeline, why it is where it is, and every attempt." })); inspectFor = null; return; }
  const final = ["delivered", "failed", "cancelled"].includes(m.state);
  const actions = el("div", { class: "actions" },
    !final ? el("button", { type: "button", testid: "action-cancel", onclick: () => act("cancel " + m.messageId, () => native("DELETE", "/v2/messages/" + encodeURIComponent(m.messageId), m.account)) }, "Cancel message") : null,
    m.dlqId && m.state === "failed" ? el("button", { type: "button", testid: "action-dlq-retry", onclick: () => act("retry DLQ " + m.dlqId, () => native("POST", "/v2/dlq/retry/" + encodeURIComponent(m.dlqId), m.account)) }, "Retry from DLQ") : null);
  const insp = el("div", { testid: "inspector" }, el("p", { class: "meta", text: "loading attempts…" }));
  box.replaceChildren(
    el("h2", { class: "mono", testid: "detail-id", text: m.messageId }),
    el("p", { class: "meta" }, el("span", { class: "badge s-" + m.state, testid: "detail-state", text: m.state }),
      ` ${m.method} ${m.url} · account ${m.account}` + (m.queueName ? ` · queue ${m.queueName}` : "") + (m.scheduleId ? ` · schedule ${m.scheduleId}` : "") + ` · retries ${m.retried}/${m.maxRetries}`),
    el("h3", { text: "timeline" }), timeline(m),
    el("h3", { text: "why" }), why(m), actions,
    el("h3", { text: "attempts" }), insp);
  inspectFor = m.messageId;
  inspector(m, insp).catch((e) => { if (inspectFor === m.messageId) insp.replaceChildren(el("p", { class: "bad", text: e.message })); });
}

// ------------------------------------------------------------------ other views

function table(testid, heads, rows) {
  return el("table", { class: "grid", testid }, el("thead", {}, el("tr", {}, heads.map((h) => el("th", { text: h })))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c))))));
}
async function renderView() {
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "view-" + S.view;
  for (const t of document.querySelectorAll('[role="tab"]')) t.setAttribute("aria-selected", String(t.dataset.view === S.view));
  const box = $("#view-" + S.view);
  const accs = Object.entries(S.accounts);
  if (S.view === "queues") {
    const rows = accs.flatMap(([a, acc]) => acc.queues.map((q) => [a, q.name, String(q.parallelism), String(q.lag), q.paused ? "paused" : "running",
      el("button", { type: "button", testid: "queue-toggle", "data-queue": q.name, onclick: () => act(`${q.paused ? "resume" : "pause"} queue ${q.name}`, () => native("POST", `/v2/queues/${encodeURIComponent(q.name)}/${q.paused ? "resume" : "pause"}`, a)) }, q.paused ? "Resume" : "Pause")]));
    box.replaceChildren(table("queues-table", ["account", "queue", "parallelism", "lag", "state", ""], rows));
  } else if (S.view === "schedules") {
    const rows = accs.flatMap(([a, acc]) => acc.schedules.map((s) => [a, el("span", { class: "mono", text: s.scheduleId }), s.cron, s.destination, iso(s.nextScheduleTime), s.isPaused ? "paused" : "active",
      el("button", { type: "button", testid: "schedule-toggle", onclick: () => act(`${s.isPaused ? "resume" : "pause"} schedule ${s.scheduleId}`, () => native("POST", `/v2/schedules/${encodeURIComponent(s.scheduleId)}/${s.isPaused ? "resume" : "pause"}`, a)) }, s.isPaused ? "Resume" : "Pause")]));
    box.replaceChildren(table("schedules-table", ["account", "schedule", "cron", "destination", "next fire", "state", ""], rows));
  } else if (S.view === "dlq") {
    const rows = accs.flatMap(([a, acc]) => acc.dlq.map((e) => [a, el("span", { class: "mono", text: e.dlqId }), el("a", { href: "?msg=" + encodeURIComponent(e.messageId), text: e.messageId }), e.url, String(e.responseStatus ?? ""),
      el("button", { type: "button", testid: "dlq-retry", onclick: () => act("retry DLQ " + e.dlqId, () => native("POST", "/v2/dlq/retry/" + encodeURIComponent(e.dlqId), a)) }, "Retry")]));
    box.replaceChildren(table("dlq-table", ["account", "DLQ id", "message", "URL", "last status", ""], rows));
  } else if (S.view === "ledger") {
    const led = await api("GET", "/_sim/ledger?limit=200");
    box.replaceChildren(el("p", { testid: "ledger-total", text: `total $${led.total}` }),
      table("ledger-accounts", ["account", "spent"], Object.entries(led.accounts).map(([k, v]) => [k, "$" + v])),
      table("ledger-agents", ["agent", "spent"], Object.entries(led.agents).map(([k, v]) => [k, "$" + v])));
  } else if (S.view === "journal") {
    const rows = S.journal.slice(-500).reverse().map((e) => [String(e.seq), short(e.time), e.kind, e.account || "", e.kind === "request" ? `${e.method} ${e.path}` : `${e.messageId || ""} ${e.url || ""}`, String(e.status ?? ""), e.outcome || e.error || "", e.rule || ""]);
    box.replaceChildren(el("p", { class: "meta", text: "newest 500 (control-plane reads left out)" }), table("journal-table", ["seq", "time", "kind", "account", "what", "status", "outcome", "rule"], rows));
  } else if (S.view === "scenarios") {
    const loaded = (await api("GET", "/_sim/scenarios")).scenarios;
    const text = el("textarea", { testid: "scenario-text", rows: "10", cols: "80", class: "mono", "aria-label": "scenario YAML",
      placeholder: "name: flaky\ndestinations:\n  - name: fail-twice\n    match: \"*\"\n    respond: [503, 503, 200]" });
    const load = el("button", { type: "button", testid: "scenario-load", onclick: () => act("load scenario", async () => {
      const headers = { "Content-Type": "application/yaml" };
      if (TOKEN) headers["X-Qstash-Sim-Token"] = TOKEN;
      const r = await fetch("/_sim/scenarios", { method: "POST", headers, body: text.value });
      const body = await r.json();
      if (!r.ok) throw new Error((body.errors || [body.error]).join("; "));
      S.view = "scenarios";
    }) }, "Load scenario");
    const rows = loaded.map((sc) => [sc.name, sc.description || "", sc.rules.map((r) => `${r.name}: fired ${r.fired}`).join(", "),
      el("button", { type: "button", testid: "scenario-unload", onclick: () => act("unload " + sc.name, () => api("DELETE", "/_sim/scenarios/" + encodeURIComponent(sc.name))) }, "Unload")]);
    box.replaceChildren(table("scenarios-table", ["scenario", "description", "rules", ""], rows), el("h3", { text: "load a scenario (YAML or JSON)" }), text, el("div", { class: "actions" }, load));
  } else if (S.view === "accounts") {
    const rows = accs.map(([a, acc]) => [a, el("span", { class: "mono", text: acc.signingKeys.current }), el("span", { class: "mono", text: acc.signingKeys.next }), String(acc.messages.length),
      el("button", { type: "button", testid: "rotate-keys", "data-account": a, onclick: () => act("rotate keys of " + a, () => api("POST", "/_sim/signing-keys/rotate?account=" + encodeURIComponent(a))) }, "Rotate keys")]);
    box.replaceChildren(table("accounts-table", ["account", "current key", "next key", "messages", ""], rows));
  }
}

// ------------------------------------------------------------------ start

function wire() {
  const form = $('[data-testid="filters"]');
  form.addEventListener("input", () => { writeUrl(); applyFilters(); });
  form.addEventListener("reset", () => setTimeout(() => { writeUrl(); applyFilters(); }));
  form.addEventListener("submit", (e) => e.preventDefault());
  const list = $('[data-testid="message-list"]');
  list.addEventListener("scroll", () => requestAnimationFrame(paintRows));
  list.addEventListener("keydown", onListKey);
  $('[data-testid="clock-form"]').addEventListener("submit", (e) => {
    e.preventDefault();
    const by = $('[data-testid="advance-by"]').value.trim();
    act("advance " + by, () => api("POST", "/_sim/clock/advance", { by: /^[0-9.]+$/.test(by) ? Number(by) : by }));
  });
  $('[data-testid="settle"]').addEventListener("click", () => act("settle", () => api("POST", "/_sim/settle")));
  $('[data-testid="next-event"]').addEventListener("click", () => {
    const t = nextEvent();
    if (t === null) { status("nothing is scheduled"); return; }
    act(`advance to the next event (${iso(t)})`, () => api("POST", "/_sim/clock/advance", { by: Math.max(0, t - S.now) / 1000 }));
  });
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  for (const t of tabs) {
    t.addEventListener("click", () => { S.view = t.dataset.view; writeUrl(); renderView().catch((e) => status(e.message, true)); });
    t.addEventListener("keydown", (e) => {
      const i = tabs.indexOf(t);
      const j = e.key === "ArrowRight" ? (i + 1) % tabs.length : e.key === "ArrowLeft" ? (i + tabs.length - 1) % tabs.length : -1;
      if (j >= 0) { tabs[j].focus(); tabs[j].click(); }
    });
  }
}
async function loadJournal() {
  // The journal so far (the stream then tails it): attempts, creators and callbacks of each message.
  let cursor = null;
  for (let page = 0; page < 200; page++) {
    const r = await api("GET", "/_sim/journal?limit=10000" + (cursor ? "&cursor=" + cursor : ""));
    for (const e of r.entries) {
      if (e.kind === "request" && e.method === "GET" && (e.path || "").startsWith("/_sim/")) S.lastSeq = Math.max(S.lastSeq, e.seq);
      else ingest(e);
    }
    if (!r.cursor) break;
    cursor = r.cursor;
  }
}
async function start() {
  readUrl(); writeUrl(); wire(); tickWall(); // writeUrl drops what the page does not keep (?token=)
  try {
    // The newest 300 of each account first (the first screen, fast), then everything in the background.
    const [health] = await Promise.all([api("GET", "/_sim/health"), loadJournal(), refresh(300)]);
    S.seed = health.seed; S.clockKind = health.clock;
    renderClock(); applyFilters(); renderDetail();
    document.body.dataset.ready = "true";
    if (S.partial) await refresh();
    document.body.dataset.complete = "true";
  } catch (e) { status(e.message, true); }
  listen();
}
start();
