// qstash-sim dashboard: plain ES modules, no framework, no build step. Every call goes to this server's
// own control plane (/_sim/...) or native QStash API (/v2/...); live updates come from /_sim/events/stream.
// This module: the URL state, the clock, the message list (virtualised), the detail panel and the start.

import { $, act, api, el, hooks, iso, native, short, status } from "./dom.js";
import { FULL, S, flowOf, listen, loadJournal, readState, surfaceOf } from "./data.js";
import { timeline } from "./timeline.js";
import { why } from "./why.js";
import { inspector } from "./inspector.js";
import { renderView } from "./views.js";
import { readWf, writeWf } from "./workflows.js";

const ROW_H = 28;
const FILTERS = ["state", "destination", "queue", "schedule", "label", "flow", "account", "surface", "q"];

// ------------------------------------------------------------------ URL state

function readUrl() {
  const q = new URLSearchParams(location.search);
  S.view = q.get("view") || "messages";
  S.selected = q.get("msg");
  readWf(q);
  const form = $('[data-testid="filters"]');
  for (const f of FILTERS) form.elements[f].value = q.get(f) || "";
}
function writeUrl() {
  const q = new URLSearchParams();
  if (S.view !== "messages") q.set("view", S.view);
  const form = $('[data-testid="filters"]');
  for (const f of FILTERS) if (form.elements[f].value) q.set(f, form.elements[f].value);
  if (S.selected) q.set("msg", S.selected);
  writeWf(q);
  const s = q.toString();
  history.replaceState(null, "", location.pathname + (s ? "?" + s : ""));
}

// ------------------------------------------------------------------ data

async function refresh(limit = FULL) {
  await readState(limit);
  renderClock(); applyFilters(); renderDetail(); renderView().catch((e) => status(e.message, true));
}
hooks.refresh = refresh;
hooks.writeUrl = writeUrl;

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
    const k = flowOf(m);
    if (k && k.waitList.includes(m.messageId)) { if (!k.paused) due(k.releaseAt); continue; } // released by the key
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
  if (f.flow && m.flowControlKey !== f.flow) return false;
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
    (S.partial ? " (the newest; reading the rest…)" : S.truncated ? " (some left out: the server cut a list; reload)" : "");
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
    m.queueName ? JSON.stringify(((S.accounts[m.account] || {}).queues || []).find((q) => q.name === m.queueName)) : "",
    JSON.stringify(flowOf(m)), (S.dedups.get(m.messageId) || []).length].join("|") : null;
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
      ` ${m.method} ${m.url} · account ${m.account}` + (m.queueName ? ` · queue ${m.queueName}` : "") + (m.scheduleId ? ` · schedule ${m.scheduleId}` : "") + (m.flowControlKey ? ` · flow-control key ${m.flowControlKey}` : "") + ` · retries ${m.retried}/${m.maxRetries}`),
    el("h3", { text: "timeline" }), timeline(m),
    el("h3", { text: "why" }), why(m), actions,
    el("h3", { text: "attempts" }), insp);
  inspectFor = m.messageId;
  inspector(m, insp).catch((e) => { if (inspectFor === m.messageId) insp.replaceChildren(el("p", { class: "bad", text: e.message })); });
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
  listen({ journal: soon, clock: renderClock });
}
start();
