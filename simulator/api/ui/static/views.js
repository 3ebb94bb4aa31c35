// qstash-sim dashboard: the tabs other than Messages (queues, schedules, URL groups, flow control, DLQ,
// ledger, journal, scenarios, accounts). Each action is an existing control-plane or native QStash call.

import { S } from "./data.js";
import { TOKEN, act, api, dur, el, iso, native, short, table } from "./dom.js";
import { workflows } from "./workflows.js";

const toggle = (testid, attrs, label, path, account, on) =>
  el("button", { type: "button", testid, ...attrs, onclick: () => act(label, () => native("POST", path, account)) }, on);
const enc = encodeURIComponent;

function queues(box, accs) {
  const rows = accs.flatMap(([a, acc]) => acc.queues.map((q) => [a, q.name, String(q.parallelism), String(q.lag), q.paused ? "paused" : "running",
    toggle("queue-toggle", { "data-queue": q.name }, `${q.paused ? "resume" : "pause"} queue ${q.name}`, `/v2/queues/${enc(q.name)}/${q.paused ? "resume" : "pause"}`, a, q.paused ? "Resume" : "Pause")]));
  box.replaceChildren(table("queues-table", ["account", "queue", "parallelism", "lag", "state", ""], rows));
}
async function schedules(box, accs) {
  const fires = new Map();
  if (accs.some(([, acc]) => acc.schedules.length)) {
    for (const f of (await api("GET", "/_sim/schedules/fires?n=5")).schedules) fires.set(f.account + "/" + f.scheduleId, f.fires);
  }
  const rows = accs.flatMap(([a, acc]) => acc.schedules.map((s) => [a, el("span", { class: "mono", text: s.scheduleId }), s.cron, s.destination,
    el("ol", { class: "fires", testid: "schedule-fires", "data-schedule": s.scheduleId },
      (fires.get(a + "/" + s.scheduleId) || []).map((t) => el("li", { testid: "schedule-fire", "data-time": String(t), text: `${iso(t)} (in ${dur(t - S.now) || "0 ms"})` }))),
    s.isPaused ? "paused" : "active",
    toggle("schedule-toggle", { "data-schedule": s.scheduleId }, `${s.isPaused ? "resume" : "pause"} schedule ${s.scheduleId}`, `/v2/schedules/${enc(s.scheduleId)}/${s.isPaused ? "resume" : "pause"}`, a, s.isPaused ? "Resume" : "Pause")]));
  box.replaceChildren(el("p", { class: "meta", text: "the next 5 fires of each schedule, on the simulator's clock (a paused one: once resumed)" }),
    table("schedules-table", ["account", "schedule", "cron", "destination", "next fires", "state", ""], rows));
}
function urlGroups(box, accs) {
  const rows = accs.flatMap(([a, acc]) => (acc.urlGroups || []).map((g) => [a, el("span", { class: "mono", testid: "urlgroup-name", text: g.name }),
    el("ul", { class: "endpoints", testid: "urlgroup-endpoints", "data-group": g.name },
      g.endpoints.map((e) => el("li", { testid: "urlgroup-endpoint", text: (e.name ? e.name + ": " : "") + e.url }))),
    String(g.endpoints.length), iso(g.updatedAt)]));
  box.replaceChildren(el("p", { class: "meta", text: "a publish to a URL group creates one message per endpoint, in this order" }),
    table("urlgroups-table", ["account", "URL group", "endpoints", "count", "updated"], rows));
}
// A key's rate window: the period running now (its start, its end, the starts it admitted), or none.
function rateWindow(k) {
  if (!k.rate) return "no rate limit";
  const end = k.periodStart === null ? null : k.periodStart + k.period * 1000;
  if (end === null || end <= S.now) return `${k.rate} per ${k.period} s · no period running`;
  return `${k.rateCount} of ${k.rate} per ${k.period} s · ${short(k.periodStart)}–${short(end)} (ends in ${dur(end - S.now)})`;
}
function flowKeys(box, accs) {
  const rows = accs.flatMap(([a, acc]) => (acc.flowControl || []).map((k) => {
    const flags = [k.paused ? "paused" : "running", k.pinnedParallelism ? "parallelism pinned" : "", k.pinnedRate ? "rate pinned" : ""].filter(Boolean).join(", ");
    const path = `/v2/flowControl/${enc(k.key)}/`;
    return [a, el("a", { class: "mono", href: "?flow=" + enc(k.key), text: k.key }),
      el("span", { testid: "flow-in-flight", text: `${k.inFlight.length} of ${k.parallelism ?? "∞"}` }),
      el("span", { testid: "flow-rate", text: rateWindow(k) }),
      el("span", { testid: "flow-waitlist", text: String(k.waitListSize) + (k.waitList.length ? " · next " + k.waitList.slice(0, 3).join(", ") : "") }),
      el("span", { testid: "flow-state", text: flags }),
      el("span", { class: "actions" },
        toggle("flow-toggle", { "data-key": k.key }, `${k.paused ? "resume" : "pause"} flow-control key ${k.key}`, path + (k.paused ? "resume" : "pause"), a, k.paused ? "Resume" : "Pause"),
        k.rate ? toggle("flow-reset-rate", { "data-key": k.key }, `reset the rate of ${k.key}`, path + "resetRate", a, "Reset rate") : null)];
  }));
  box.replaceChildren(el("p", { class: "meta", text: "the keys the messages name: attempts in flight, the rate window, the waitlist (first come first out)" }),
    table("flow-table", ["account", "key", "in flight", "rate window", "waitlist", "state", ""], rows));
}
function dlq(box, accs) {
  const rows = accs.flatMap(([a, acc]) => acc.dlq.map((e) => [a, el("span", { class: "mono", text: e.dlqId }), el("a", { href: "?msg=" + enc(e.messageId), text: e.messageId }), e.url, String(e.responseStatus ?? ""),
    toggle("dlq-retry", {}, "retry DLQ " + e.dlqId, "/v2/dlq/retry/" + enc(e.dlqId), a, "Retry")]));
  box.replaceChildren(table("dlq-table", ["account", "DLQ id", "message", "URL", "last status", ""], rows));
}
async function ledger(box) {
  const led = await api("GET", "/_sim/ledger?limit=200");
  box.replaceChildren(el("p", { testid: "ledger-total", text: `total $${led.total}` }),
    table("ledger-accounts", ["account", "spent"], Object.entries(led.accounts).map(([k, v]) => [k, "$" + v])),
    table("ledger-agents", ["agent", "spent"], Object.entries(led.agents).map(([k, v]) => [k, "$" + v])));
}
// A journal entry's outcome: what it says, or for a deduplicated request which message swallowed it.
function outcome(e) {
  const dups = (e.detail && e.detail.deduplicated) || [];
  if (dups.length) return el("span", { testid: "journal-dedup", text: dups.map((d) => `swallowed by ${d.messageId}${d.dedupId ? " under dedup id " + d.dedupId : ""}`).join("; ") });
  return e.outcome || e.error || "";
}
function journal(box) {
  const rows = S.journal.slice(-500).reverse().map((e) => [String(e.seq), short(e.time), e.kind, e.account || "", e.kind === "request" ? `${e.method} ${e.path}` : `${e.messageId || ""} ${e.url || ""}`, String(e.status ?? ""), outcome(e), e.rule || ""]);
  box.replaceChildren(el("p", { class: "meta", text: "newest 500 (control-plane reads left out)" }), table("journal-table", ["seq", "time", "kind", "account", "what", "status", "outcome", "rule"], rows));
}
async function scenarios(box) {
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
    el("button", { type: "button", testid: "scenario-unload", onclick: () => act("unload " + sc.name, () => api("DELETE", "/_sim/scenarios/" + enc(sc.name))) }, "Unload")]);
  box.replaceChildren(table("scenarios-table", ["scenario", "description", "rules", ""], rows), el("h3", { text: "load a scenario (YAML or JSON)" }), text, el("div", { class: "actions" }, load));
}
function accounts(box, accs) {
  const rows = accs.map(([a, acc]) => [a, el("span", { class: "mono", text: acc.signingKeys.current }), el("span", { class: "mono", text: acc.signingKeys.next }), String(acc.messages.length),
    el("button", { type: "button", testid: "rotate-keys", "data-account": a, onclick: () => act("rotate keys of " + a, () => api("POST", "/_sim/signing-keys/rotate?account=" + enc(a))) }, "Rotate keys")]);
  box.replaceChildren(table("accounts-table", ["account", "current key", "next key", "messages", ""], rows));
}

const VIEWS = { queues, schedules, urlgroups: urlGroups, flow: flowKeys, dlq, workflows, ledger, journal, scenarios, accounts };

export async function renderView() {
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "view-" + S.view;
  for (const t of document.querySelectorAll('[role="tab"]')) t.setAttribute("aria-selected", String(t.dataset.view === S.view));
  const render = VIEWS[S.view];
  if (render) await render(document.getElementById("view-" + S.view), Object.entries(S.accounts));
}
