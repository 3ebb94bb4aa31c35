// qstash-sim dashboard: what the page knows (one state object S), read from GET /_sim/state and the
// journal (GET /_sim/journal, then live from GET /_sim/events/stream).

import { $, TOKEN, api } from "./dom.js";

export const FULL = 10000; // messages per account GET /_sim/state shows at most

export const S = {
  view: "messages", seed: null, clockKind: null, now: null, virtual: true,
  accounts: {}, messages: [], byId: new Map(), shown: [], selected: null, flows: new Map(),
  journal: [], attempts: new Map(), creators: new Map(), children: new Map(), dedups: new Map(), lastSeq: 0,
};

// The messages of `account` older than `oldest` (a messageId), oldest first: GET /_sim/messages, paged.
async function older(account, oldest) {
  const pages = [];
  for (let cursor = oldest; cursor;) {
    const r = await api("GET", `/_sim/messages?account=${encodeURIComponent(account)}&limit=${FULL}&cursor=${encodeURIComponent(cursor)}`);
    pages.push(r.messages); cursor = r.cursor;
  }
  return pages.flat().reverse();
}

// Read the state (the newest `limit` of each list of each account) and index it; with `limit` = FULL,
// an account cut there has the rest of its messages read page by page.
export async function readState(limit) {
  const [clock, state] = await Promise.all([api("GET", "/_sim/clock"), api("GET", "/_sim/state?limit=" + limit)]);
  S.partial = limit < FULL && !!state.truncated;
  S.now = clock.now; S.virtual = clock.virtual;
  const cut = limit >= FULL ? Object.entries(state.accounts).filter(([, acc]) => acc.messages.length >= FULL) : [];
  const rest = await Promise.all(cut.map(([name, acc]) => older(name, acc.messages[0].messageId).catch(() => null)));
  cut.forEach(([, acc], i) => { if (rest[i]) acc.messages = rest[i].concat(acc.messages); });
  S.accounts = state.accounts;
  const all = [];
  S.flows = new Map();
  for (const [name, acc] of Object.entries(state.accounts)) {
    for (const m of acc.messages) { m.account = name; m.order = all.length; all.push(m); }
    for (const k of acc.flowControl || []) S.flows.set(name + "/" + k.key, k);
  }
  all.sort((a, b) => b.createdAt - a.createdAt || b.order - a.order); // newest first, as created
  S.messages = all;
  S.byId = new Map(all.map((m) => [m.messageId, m]));
  // Cut only if a page could not be read (a message dropped meanwhile) or another list hit the limit.
  S.truncated = rest.includes(null) || (!!state.truncated && !cut.length);
}

// The flow-control key a message names, as the engine holds it now (null without one).
export function flowOf(m) {
  return m.flowControlKey ? S.flows.get(m.account + "/" + m.flowControlKey) || null : null;
}

export function ingest(e) {
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
    for (const id of e.messageIds || []) if (!S.creators.has(id)) S.creators.set(id, e);
  }
  for (const d of (e.detail && e.detail.deduplicated) || []) {
    S.dedups.set(d.messageId, (S.dedups.get(d.messageId) || []).concat([{ entry: e, dedupId: d.dedupId }]));
  }
}
export function forget() {
  S.journal = []; S.attempts.clear(); S.creators.clear(); S.children.clear(); S.dedups.clear(); S.lastSeq = 0;
}
export function surfaceOf(m) {
  if (m.scheduleId) return "schedule";
  const c = S.creators.get(m.messageId);
  if (!c || !c.path) return "";
  return c.path.startsWith("/v1/") ? "sapiom" : c.path.startsWith("/v2/") ? "qstash" : "";
}

// The journal so far (the stream then tails it): attempts, creators and callbacks of each message.
export async function loadJournal() {
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

// Follow the journal live; `on.journal()` after new entries, `on.clock()` when the clock moved.
export async function listen(on) {
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
        while ((cut = buf.indexOf("\n\n")) >= 0) { onEvent(buf.slice(0, cut), on); buf = buf.slice(cut + 2); }
      }
    } catch (e) { /* the server stopped or restarted: try again */ }
    live.textContent = "reconnecting"; live.classList.remove("on");
    await new Promise((ok) => setTimeout(ok, 2000));
  }
}
function onEvent(block, on) {
  let kind = "message"; let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) kind = line.slice(7);
    else if (line.startsWith("data: ")) data += line.slice(6);
  }
  if (kind === "journal") { ingest(JSON.parse(data)); on.journal(); }
  else if (kind === "clock") { S.now = JSON.parse(data).now; on.clock(); }
  else if (kind === "reset") { forget(); on.journal(); }
}
