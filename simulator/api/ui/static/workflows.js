// qstash-sim dashboard: the Workflows tab. The Upstash Workflow runs (GET /_sim/workflows/runs), and a run
// as one timeline on virtual time with a lane per step (GET /_sim/workflows/runs/{runId}): a sleep's wait
// as a labelled gap, a waitForEvent's event id and timeout, a failed run's error and workflow DLQ id; each
// step links to the message timeline of its delivery.

import { S } from "./data.js";
import { api, dur, el, hooks, iso, short, status, table } from "./dom.js";

const STATES = ["RUN_STARTED", "RUN_SUCCESS", "RUN_FAILED", "RUN_CANCELED"];
const enc = encodeURIComponent;
const BREAK_MS = 10 * 60 * 1000; // a wait longer than this is drawn as a "⋯ 7 d ⋯" break

// The filters and the open run live in the page URL (wfstate, wfurl, run), like the message filters.
export const WF_PARAMS = { state: "wfstate", url: "wfurl", run: "run" };

function filters(onChange) {
  const state = el("select", { name: "state", testid: "wf-filter-state", "aria-label": "run state" },
    el("option", { value: "", text: "any" }), STATES.map((s) => el("option", { value: s, text: s })));
  const url = el("input", { name: "url", testid: "wf-filter-url", placeholder: "URL contains", "aria-label": "workflow URL contains" });
  state.value = S.wf.state; url.value = S.wf.url;
  const form = el("form", { class: "filters", testid: "wf-filters", "aria-label": "workflow filters" },
    el("label", {}, "state ", state), el("label", {}, "URL ", url));
  form.addEventListener("submit", (e) => e.preventDefault());
  form.addEventListener("input", () => { S.wf.state = state.value; S.wf.url = url.value.trim(); hooks.writeUrl(); onChange(); });
  return form;
}

function runRows(runs) {
  const shown = runs.filter((r) => !S.wf.url || r.workflowUrl.includes(S.wf.url)).reverse(); // newest first
  const rows = shown.map((r) => {
    const open = el("button", { type: "button", class: "mono linkish", testid: "wf-run-open", "data-run": r.workflowRunId,
      "aria-label": "open run " + r.workflowRunId, onclick: () => openRun(r.workflowRunId) }, r.workflowRunId);
    return [open, el("span", { class: "badge s-" + r.workflowState, testid: "wf-run-state", text: r.workflowState }),
      el("span", { testid: "wf-run-url", text: r.workflowUrl }), el("span", { class: "mono", text: iso(r.createdAt) }),
      String(r.steps.length)];
  });
  const t = table("wf-runs-table", ["run id", "state", "URL", "created", "steps"], rows);
  t.querySelectorAll("tbody tr").forEach((tr, i) => { tr.dataset.testid = "wf-run-row"; tr.dataset.run = shown[i].workflowRunId; });
  return el("div", {}, t, el("p", { class: "count", testid: "wf-run-count", text: `${shown.length} of ${runs.length} runs` }));
}

let listBox = null;
let detailBox = null;
async function loadRuns() {
  const q = S.wf.state ? "&state=" + enc(S.wf.state) : "";
  const r = await api("GET", "/_sim/workflows/runs?limit=1000" + q);
  listBox.replaceChildren(runRows(r.runs));
  if (r.truncated) listBox.append(el("p", { class: "meta", text: "the newest 1000 runs" }));
}

// Built once (the filters keep their focus while live updates re-read the runs and the open run).
export async function workflows(box) {
  if (!S.wf) S.wf = { state: "", url: "", run: null };
  if (!listBox || !box.contains(listBox)) {
    listBox = el("div", { testid: "wf-runs" });
    detailBox = el("div", { class: "detail wf-detail", testid: "wf-detail", tabindex: "-1", "aria-label": "workflow run" });
    box.replaceChildren(filters(() => loadRuns().catch((e) => status(e.message, true))),
      el("div", { class: "split wf-split" }, el("div", { class: "listpane wf-list" }, listBox), detailBox));
  }
  await loadRuns();
  if (S.wf.run) await showRun(S.wf.run);
  else detailBox.replaceChildren(el("p", { class: "empty", text: "Pick a run: its steps on one timeline." }));
}

function openRun(id) {
  S.wf.run = id; hooks.writeUrl();
  showRun(id).then(() => detailBox.focus()).catch((e) => status(e.message, true));
}

async function showRun(id) {
  let run;
  try { run = await api("GET", "/_sim/workflows/runs/" + enc(id)); }
  catch (e) { detailBox.replaceChildren(el("p", { class: "bad", testid: "wf-run-missing", text: e.message })); return; }
  for (const tr of listBox.querySelectorAll("tbody tr")) tr.setAttribute("aria-selected", String(tr.dataset.run === id));
  detailBox.replaceChildren(...[
    el("h2", { class: "mono", testid: "wf-run-id", text: run.workflowRunId }),
    el("p", { class: "meta" }, el("span", { class: "badge s-" + run.workflowState, testid: "wf-detail-state", text: run.workflowState }),
      ` ${run.workflowUrl} · account ${run.account} · created ${iso(run.createdAt)}` +
      (run.completedAt !== undefined ? ` · ended ${iso(run.completedAt)} (after ${dur(run.completedAt - run.createdAt) || "0 ms"})` : "") +
      (run.labels.length ? " · labels " + run.labels.join(", ") : "")),
    run.error ? el("p", { class: "bad", testid: "wf-run-error", text: "Error: " + run.error }) : null,
    failedMessage(run) ? el("p", {}, el("a", { testid: "wf-run-error-message", href: "?msg=" + enc(failedMessage(run)), text: "the failed delivery's timeline" })) : null,
    run.dlqId ? el("p", { testid: "wf-run-dlq", text: `In the workflow DLQ as ${run.dlqId}` }) : null,
    run.response !== undefined ? el("p", { class: "meta", testid: "wf-run-response", text: "returned " + run.response }) : null,
    el("h3", { text: "timeline" }), runTimeline(run)].filter(Boolean));
}

// The message a failed run names in its error ("message msg_... failed for good (500)"), if any.
const failedMessage = (run) => ((run.error || "").match(/\bmsg_[A-Za-z0-9]+/) || [null])[0];

// ------------------------------------------------------------------ the run's timeline

function sleepLabel(s) {
  if (s.sleepFor !== undefined) return "sleep " + (typeof s.sleepFor === "number" ? dur(s.sleepFor * 1000) : s.sleepFor);
  if (s.sleepUntil !== undefined) return "sleep until " + iso(s.sleepUntil * 1000);
  return "sleep";
}
function gap(ms, cls, testid, label) {
  const big = ms > BREAK_MS;
  const g = el("div", { class: "gap " + cls + (big ? " break" : ""), testid },
    el("span", { class: "label", text: big ? `⋯ ${label} ⋯` : label }));
  g.style.minWidth = (big ? 160 : Math.max(24, Math.min(160, 24 + Math.sqrt(ms / 1000) * 12))) + "px";
  return g;
}
function waitLabel(s) {
  const parts = [`waits for event ${s.waitEventId}`];
  if (s.timeout !== undefined) parts.push("timeout " + (typeof s.timeout === "number" ? dur(s.timeout * 1000) : s.timeout));
  if (s.timedOut === true) parts.push("timed out");
  else if (s.timedOut === false) parts.push("notified");
  if (s.timeoutAt !== undefined) parts.push(`times out at ${short(s.timeoutAt)} (in ${dur(s.timeoutAt - S.now) || "0 ms"})`);
  return parts.join(" · ");
}
const rel = (t, run) => "+" + (dur(t - run.createdAt) || "0 ms");

function stepLane(s, run) {
  const lane = el("div", { class: "lane wf-lane", testid: "wf-step", "data-type": s.stepType, "data-state": s.state, "data-step": String(s.stepId) },
    el("span", { class: "lane-name", title: s.stepName }, el("b", { testid: "wf-step-name", text: s.stepName || "(unnamed)" }),
      el("br"), el("span", { class: "mono", testid: "wf-step-type", text: s.stepType || "?" })));
  const start = s.createdAt;
  const end = s.completedAt;
  if (start !== undefined) lane.append(node("published", start, run));
  const waited = (end ?? S.now) - (start ?? run.createdAt);
  if (s.stepType === "SleepFor" || s.stepType === "SleepUntil") {
    lane.append(gap(waited, "delay", "wf-gap-sleep", sleepLabel(s) + (end === undefined ? " · sleeping" : ` · ${dur(waited) || "0 ms"}`)));
  } else if (s.waitEventId !== undefined) {
    lane.append(gap(waited, "delay", "wf-wait", waitLabel(s)));
  } else if (end !== undefined && start !== undefined && end > start) {
    lane.append(gap(end - start, "idle", "wf-gap", dur(end - start)));
  }
  lane.append(el("div", { class: "node", "data-state": s.state },
    el("span", { class: "badge s-" + s.state, testid: "wf-step-state", text: s.state }),
    el("time", { datetime: iso(end ?? S.now), text: end !== undefined ? rel(end, run) : "now" })));
  const facts = el("span", { class: "wf-facts" },
    el("span", { testid: "wf-step-attempts", text: `${s.attempts} attempt${s.attempts === 1 ? "" : "s"}` }),
    s.out !== undefined ? el("span", { class: "mono", testid: "wf-step-out", title: s.out, text: "out " + (s.out.length > 80 ? s.out.slice(0, 80) + "…" : s.out) }) : null,
    s.messageId ? el("a", { class: "mono", testid: "wf-step-message", href: "?msg=" + enc(s.messageId), text: s.messageId, title: "the message timeline of this step's delivery" }) : null);
  lane.append(facts);
  return lane;
}
function node(label, t, run) {
  return el("div", { class: "node", title: iso(t) }, el("span", { class: "badge", text: label }), el("time", { datetime: iso(t), text: rel(t, run) }));
}

export function runTimeline(run) {
  const box = el("div", { class: "timeline", testid: "wf-timeline", role: "group", "aria-label": "run timeline on virtual time" });
  for (const s of run.steps) box.append(stepLane(s, run));
  for (const w of run.waiting || []) box.append(stepLane(w, run));
  if (run.completedAt !== undefined) {
    box.append(el("div", { class: "lane", testid: "wf-end" }, el("span", { class: "lane-name", text: "end" }),
      el("span", { class: "badge s-" + run.workflowState, text: run.workflowState }),
      el("time", { class: "wf-end-time", text: rel(run.completedAt, run) + (run.error ? " · " + run.error : "") + (run.dlqId ? " · DLQ " + run.dlqId : "") })));
  }
  return box;
}

export function readWf(q) { S.wf = { state: q.get(WF_PARAMS.state) || "", url: q.get(WF_PARAMS.url) || "", run: q.get(WF_PARAMS.run) }; }
export function writeWf(q) {
  if (!S.wf) return;
  if (S.wf.state) q.set(WF_PARAMS.state, S.wf.state);
  if (S.wf.url) q.set(WF_PARAMS.url, S.wf.url);
  if (S.wf.run) q.set(WF_PARAMS.run, S.wf.run);
}
