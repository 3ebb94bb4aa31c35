// qstash-sim dashboard: a message's life on one timeline, on virtual time (lanes of steps and gaps).

import { ORIGIN, dur, el, iso, short } from "./dom.js";
import { S } from "./data.js";

const BREAK_MS = 10 * 60 * 1000; // gaps longer than this are compressed into a "⋯ 6 h 7 m ⋯" break

// The steps of one message's life: its history, the DLQ entry, the backoff gaps with their origin.
export function steps(m) {
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
export function timeline(m) {
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
