// qstash-sim dashboard: every attempt's raw request and answer, its Upstash-Signature checked as a
// Receiver would, the headers forwarded vs stripped, and copy as curl.

import { S } from "./data.js";
import { api, el, iso, status } from "./dom.js";

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
export async function inspector(m, box) {
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
        headersSection(m, d),
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

// What happened to each header of the request that created the message, in one attempt: forwarded (as it
// was, or renamed from Upstash-Forward-*), consumed as QStash config, or not forwarded; and what the
// delivery added on its own. Read by comparing the journal's `detail.headers` with the delivery's headers.
export function headerFates(inbound, sent) {
  const low = new Map(Object.entries(sent).map(([k, v]) => [k.toLowerCase(), [k, v]]));
  const used = new Set();
  const rows = [];
  for (const [name, value] of Object.entries(inbound)) {
    const n = name.toLowerCase();
    const target = n.startsWith("upstash-forward-") ? name.slice(16) : name;
    const hit = low.get(target.toLowerCase());
    if (value !== "(redacted)" && hit && hit[1] === value) {
      used.add(hit[0].toLowerCase());
      rows.push({ name, fate: target === name ? "forwarded" : "renamed", text: target === name ? "forwarded" : "forwarded as " + hit[0] });
    } else if (value === "(redacted)") rows.push({ name, fate: "stripped", text: "not forwarded (the caller's credential)" });
    else if (target !== name) rows.push({ name, fate: "stripped", text: "not forwarded (a connection or framing header)" });
    else if (n.startsWith("upstash-")) rows.push({ name, fate: "config", text: "consumed as QStash config" });
    else rows.push({ name, fate: "stripped", text: "not forwarded" });
  }
  for (const [k, [name]] of low) if (!used.has(k)) rows.push({ name, fate: "added", text: "added by the delivery" });
  return rows;
}
function headersSection(m, d) {
  const c = S.creators.get(m.messageId);
  const head = el("h3", { text: "headers forwarded vs stripped" });
  if (!c || c.kind !== "request" || !(c.detail || {}).headers) {
    return [head, el("p", { class: "meta", testid: "header-fates-none", text: c && c.kind === "fire" ? "Created by a schedule fire: its headers are the schedule's." : "The creating request's headers were not recorded." })];
  }
  if ((c.path || "").includes("/batch")) {
    return [head, el("p", { class: "meta", testid: "header-fates-none", text: "Published in a batch: each message's headers came in the body." })];
  }
  const rows = headerFates(c.detail.headers, d.headers);
  return [head, el("table", { class: "grid", testid: "header-fates" }, el("tbody", {}, rows.map((r) =>
    el("tr", { testid: "header-fate", "data-fate": r.fate, "data-header": r.name },
      el("td", { class: "mono", text: r.name }), el("td", { class: "fate-" + r.fate, text: r.text })))))];
}
