// qstash-sim dashboard: why a message is where it is (waiting, retrying, failed, deduplicated...).

import { ORIGIN, dur, el, iso, ordinal, short } from "./dom.js";
import { S, flowOf } from "./data.js";
import { steps } from "./timeline.js";

export function why(m) {
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
    else { const f = flowWhy(m); if (f) out.push(f); }
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
  for (const d of S.dedups.get(m.messageId) || []) out.push(`${dedupLine(d.entry)}: swallowed by ${m.messageId}${d.dedupId ? " under dedup id " + d.dedupId : ""}.`);
  return el("ul", { class: "why", testid: "why" }, out.map((t) => el("li", { testid: "why-item", text: t })));
}

// Where a message stands in its flow-control key's waitlist, with the key's limits and counters.
export function flowWhy(m) {
  const k = flowOf(m);
  if (!k) return null;
  const i = k.waitList.indexOf(m.messageId);
  if (i < 0 && !(k.waitListSize > k.waitList.length && !k.inFlight.includes(m.messageId))) return null;
  const limits = [k.parallelism ? `parallelism ${k.parallelism}, ${k.inFlight.length} in flight` : `${k.inFlight.length} in flight`];
  if (k.rate) limits.push(`rate ${k.rate} per ${k.period} s, ${k.rateCount} started this period`);
  const where = i >= 0 ? `${ordinal(i + 1)} in the waitlist` : `In the waitlist (beyond the first ${k.waitList.length} of ${k.waitListSize} shown)`;
  let text = `${where} of flow-control key ${k.key} (${limits.join("; ")})`;
  if (k.paused) text += "; the key is paused: resume it to deliver";
  else if (k.releaseAt && k.releaseAt > S.now) text += `; the rate period ends at ${short(k.releaseAt)}`;
  return text + ".";
}
// "POST /v2/publish/... at 00:00:05": the request a dedup entry came with.
export function dedupLine(e) {
  return `${e.method} ${e.path} at ${short(e.time)}`;
}
