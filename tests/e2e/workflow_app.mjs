// Upstash Workflow endpoints on the UNMODIFIED @upstash/workflow 1.3.3 (`serve` from the package root,
// which answers fetch Requests) behind a plain node:http server on 127.0.0.1, for tests/workflow/.
// Loopback only (_guard.mjs): nothing is downloaded or spawned.
//
//   QSTASH_URL=http://127.0.0.1:8080 QSTASH_TOKEN=tok QSTASH_CURRENT_SIGNING_KEY=sig_... \
//   QSTASH_NEXT_SIGNING_KEY=sig_... node workflow_app.mjs [port]
//   QSTASH_DEV=true QSTASH_DEV_PORT=8080 node workflow_app.mjs [port]    (against `qstash-sim dev`)
//
// Prints one JSON line {"port": N} once it listens (port 0 or none: any free port).
//
// Routes:
//   POST /wf/<name>     the workflows below (signatures checked by the SDK's own Receiver)
//   POST /invoke/<parent|child>   a serveMany pair: parent invokes child (context.invoke)
//   POST /_trigger      {workflow (a name, or a path such as "/invoke/parent"), body?, workflowRunId?, headers?, retries?, label?, delay?}
//                       -> the real SDK Client.trigger(...) result as JSON ({ok, result} | {ok:false, error})
//   POST /_cancel       {ids: [...]} -> Client.cancel({ids})
//   POST /_notify       {eventId, eventData, workflowRunId?} -> Client.notify(...)
//   POST /_waiters      {eventId} -> Client.getWaiters(...)
//   POST /_logs         {workflowRunId?, count?, ...} -> Client.logs(...)
//   POST /_client       {method: "dlq.list" | "dlq.resume" | "dlq.restart" | "dlq.delete" |
//                       "dlq.retryFailureFunction" | "cancel", args: [...]} -> client[.dlq].method(...args)
//   POST /_broken       {step?, failure?} -> what the "resumable" workflow breaks on (see below)
//   ANY  /_thirdparty/echo | /_thirdparty/flaky-N-<key>   third parties for context.call
//   GET  /_results      what the workflows recorded: [{workflow, workflowRunId, event, data}], in order
//
// A step function records {event: "step", data: <step name>} when it runs: the SDK runs each step's
// code once (a replayed delivery returns its logged result), so those lines are the execution order.
import http from "node:http";
import { guardLog, installGuard } from "./_guard.mjs";

installGuard();
const { serve, Client, WorkflowNonRetryableError } = await import("@upstash/workflow");
const { createWorkflow, serveMany } = await import("@upstash/workflow/cloudflare"); // not in the package root
const qstash = await import("@upstash/qstash");

const { QSTASH_URL: baseUrl, QSTASH_TOKEN: token } = process.env;
const current = process.env.QSTASH_CURRENT_SIGNING_KEY;
const next = process.env.QSTASH_NEXT_SIGNING_KEY;
// QSTASH_DEV=true (QSTASH_DEV_PORT=N): as an app in dev mode, no client, receiver or env given: the SDK's own
// defaults find the dev server on 127.0.0.1:N and use its default user's token and keys.
const dev = ["true", "1"].includes(process.env.QSTASH_DEV);
if (!dev && (!baseUrl || !token || !current || !next)) {
  console.error("set QSTASH_URL, QSTASH_TOKEN, QSTASH_CURRENT_SIGNING_KEY and QSTASH_NEXT_SIGNING_KEY (or QSTASH_DEV=true)");
  process.exit(2);
}
const client = dev ? new Client() : new Client({ baseUrl, token });
const options = dev ? {} : {
  qstashClient: new qstash.Client({ baseUrl, token }),
  receiver: new qstash.Receiver({ currentSigningKey: current, nextSigningKey: next }),
  env: {},
};

const results = [];
const broken = { step: false, failure: false }; // POST /_broken: the "resumable" workflow fails while set
const CLIENT_METHODS = new Set(["dlq.list", "dlq.resume", "dlq.restart", "dlq.delete", "dlq.retryFailureFunction", "cancel"]);
function record(workflow, context, event, data) {
  results.push({ workflow, workflowRunId: context.workflowRunId, event, data });
}
// A step whose code records that it ran, then returns value().
const step = (workflow, context, name, value) =>
  context.run(name, () => {
    record(workflow, context, "step", name);
    return value();
  });

const WORKFLOWS = {
  // three context.run steps, each using the one before
  steps: serve(async (context) => {
    const a = await step("steps", context, "first", () => ({ got: context.requestPayload }));
    const b = await step("steps", context, "second", () => `second saw ${JSON.stringify(a)}`);
    const c = await step("steps", context, "third", () => [a, b].length);
    const seen = {
      a, b, c,
      header: context.headers.get("x-user-header"),
      labels: context.labels,
      createdAt: context.workflowRunCreatedAt,
    };
    record("steps", context, "finish", seen);
    return { a, b, c };
  }, options),

  // a week-long sleep between two steps
  sleep: serve(async (context) => {
    const before = await step("sleep", context, "before", () => "before");
    await context.sleep("sleep-7d", "7d");
    const after = await step("sleep", context, "after", () => `after ${before}`);
    record("sleep", context, "finish", { before, after });
    return after;
  }, options),

  // sleepUntil a Unix time in seconds given in the payload
  "sleep-until": serve(async (context) => {
    await step("sleep-until", context, "before", () => "before");
    await context.sleepUntil("sleep-until", Number(context.requestPayload.until));
    await step("sleep-until", context, "after", () => "after");
    record("sleep-until", context, "finish", {});
    return "woke";
  }, options),

  // parallel steps (Promise.all), one of them a sleep, then a step using their results
  parallel: serve(async (context) => {
    const [x, y, z] = await Promise.all([
      step("parallel", context, "par-a", () => "A"),
      step("parallel", context, "par-b", () => "B"),
      context.sleep("par-sleep", "1h"),
    ]);
    const joined = await step("parallel", context, "join", () => `${x}${y}${z ?? ""}`);
    record("parallel", context, "finish", { x, y, z, joined });
    return joined;
  }, options),

  // context.call to a third party (payload: {path, retries}), then a step using its answer
  call: serve(async (context) => {
    const p = context.requestPayload ?? {};
    const res = await context.call("third-party", {
      url: `${self}/_thirdparty/${p.path ?? "echo"}`,
      method: "POST",
      body: JSON.stringify({ hello: "third party" }),
      headers: { "content-type": "application/json", "x-call-header": "call-value" },
      retries: p.retries ?? 0,
    });
    record("call", context, "call-result", res);
    const after = await step("call", context, "after-call", () => res.status);
    return { status: after, body: res.body };
  }, options),

  // waitForEvent with a timeout (payload: {eventId, timeout}), then a step using what came
  wait: serve(async (context) => {
    const p = context.requestPayload ?? {};
    const res = await context.waitForEvent("wait-for-event", p.eventId ?? "evt", { timeout: p.timeout ?? "1d" });
    record("wait", context, "wait-result", res);
    await step("wait", context, "after-wait", () => res.timeout);
    return res;
  }, options),

  // context.notify from a step of another run (payload: {eventId, data, workflowRunId?})
  notify: serve(async (context) => {
    const p = context.requestPayload ?? {};
    const res = await context.notify("notify", p.eventId ?? "evt", p.data ?? { from: "notify" }, p.workflowRunId);
    record("notify", context, "notify-result", res);
    return res.notifyResponse.length;
  }, options),

  // createWebhook, a step that calls it (before the run waits: kept), then waitForWebhook
  webhook: serve(async (context) => {
    const hook = await context.createWebhook("create-webhook");
    await step("webhook", context, "call-webhook", async () => {
      const r = await fetch(`${hook.webhookUrl}?q=1`, {
        method: "POST", headers: { "content-type": "application/json", "x-hook": "yes" }, body: JSON.stringify({ hooked: true }),
      });
      return r.status;
    });
    const res = await context.waitForWebhook("wait-webhook", hook, "1d");
    const seen = {
      webhookUrl: hook.webhookUrl, timeout: res.timeout, method: res.request?.method, url: res.request?.url,
      header: res.request?.headers.get("x-hook"), body: res.request ? await res.request.text() : undefined,
    };
    record("webhook", context, "webhook-result", seen);
    return seen.body;
  }, options),

  // a step that always fails (retries come from the trigger: WF_TriggerOnConfig)
  failing: serve(async (context) => {
    await context.run("boom", () => {
      record("failing", context, "attempt", context.retried);
      throw new Error("boom");
    });
  }, {
    ...options,
    failureFunction: async ({ context, failStatus, failResponse }) => {
      record("failing", context, "failureFunction", {
        failStatus, failResponse, payload: context.requestPayload, header: context.headers.get("x-user-header"),
      });
      return "handled";
    },
  }),

  // WorkflowNonRetryableError: 489 + Upstash-NonRetryable-Error, no retry whatever the retries
  "non-retryable": serve(async (context) => {
    await context.run("stop", () => {
      record("non-retryable", context, "attempt", context.retried);
      throw new WorkflowNonRetryableError("stop now");
    });
  }, {
    ...options,
    failureFunction: async ({ context, failStatus, failResponse }) => {
      record("non-retryable", context, "failureFunction", { failStatus, failResponse });
    },
  }),

  // steps one, two, three: "two" throws while broken.step, the failure function while broken.failure
  // (the workflow DLQ: a resume goes on at "two", a restart runs "one" again)
  resumable: serve(async (context) => {
    const one = await step("resumable", context, "one", () => "1");
    const two = await context.run("two", () => {
      record("resumable", context, "attempt", "two");
      if (broken.step) throw new Error("two is broken");
      record("resumable", context, "step", "two");
      return `${one}2`;
    });
    return await step("resumable", context, "three", () => `${two}3`);
  }, {
    ...options,
    failureFunction: async ({ context, failStatus }) => {
      record("resumable", context, "failureFunction", { failStatus, broken: broken.failure });
      if (broken.failure) throw new Error("the failure function is broken");
      return "handled";
    },
  }),

  // context.cancel() after one step
  cancel: serve(async (context) => {
    await step("cancel", context, "before-cancel", () => "ran");
    await context.cancel();
    record("cancel", context, "UNREACHABLE", {});
  }, options),
};

// ---- tests/workflow/test_workflow_order.py: begin ----
// POST /wf/race: a waitForEvent and a notify of the same event as parallel steps (upstash/workflow-js#102):
// whether the notify finds the waiter depends on which of the two same-instant deliveries comes first.
WORKFLOWS.race = serve(async (context) => {
  const eventId = `race-${context.workflowRunId}`;
  const [wait, notified] = await Promise.all([
    context.waitForEvent("wait", eventId, { timeout: "1h" }),
    context.notify("notify", eventId, "hello"),
  ]);
  record("race", context, "race-result", { timeout: wait.timeout, data: wait.eventData ?? null, woke: notified.notifyResponse.length });
  return wait.timeout ? "notify came first" : "wait came first";
}, options);
// ---- tests/workflow/test_workflow_order.py: end ----

// ---- benchmarks/workflow_run.py: begin ----
// POST /wf/bench20: 20 steps, what the benchmark measures: 17 context.run steps, a sleep("7d"), a
// waitForEvent that times out after 1 day, and a context.call to /_thirdparty/flaky-2-<key> (500 twice,
// then 200) with 2 retries. Payload: {key} (one per run, so each run's call fails twice).
WORKFLOWS.bench20 = serve(async (context) => {
  const key = context.requestPayload?.key ?? context.workflowRunId;
  let acc = 0;
  for (let i = 1; i <= 8; i++) acc = await context.run(`step-${i}`, () => acc + i);
  await context.sleep("sleep-7d", "7d");
  for (let i = 9; i <= 13; i++) acc = await context.run(`step-${i}`, () => acc + i);
  const wait = await context.waitForEvent("wait-1d", `bench-${key}`, { timeout: "1d" });
  const call = await context.call("flaky-call", {
    url: `${self}/_thirdparty/flaky-2-${key}`, method: "POST", body: "{}", retries: 2,
  });
  for (let i = 14; i <= 17; i++) acc = await context.run(`step-${i}`, () => acc + i);
  return { acc, timeout: wait.timeout, status: call.status };
}, options);
// ---- benchmarks/workflow_run.py: end ----

// Third-party endpoints for context.call: /_thirdparty/echo answers what it got; /_thirdparty/flaky-N-<key>
// fails (500) the first N calls of <key>, then answers 200.
const hits = new Map();
function thirdParty(req, path, body) {
  const flaky = /^\/_thirdparty\/flaky-(\d+)-(.+)$/.exec(path);
  if (flaky) {
    const n = (hits.get(flaky[2]) ?? 0) + 1;
    hits.set(flaky[2], n);
    if (n <= Number(flaky[1])) return json({ attempt: n, failing: true }, 500);
    return json({ attempt: n, ok: true });
  }
  return json({ method: req.method, header: req.headers["x-call-header"] ?? null, body });
}

// context.invoke: a parent and a child served together (serveMany routes by the last path segment)
const child = createWorkflow(async (context) => {
  const r = await step("invoke-child", context, "child-step", () => `child got ${JSON.stringify(context.requestPayload)}`);
  record("invoke-child", context, "finish", { payload: context.requestPayload, header: context.headers.get("x-invoke-header") });
  return { childResult: r };
}, options);
const parent = createWorkflow(async (context) => {
  const res = await context.invoke("invoke-child", {
    workflow: child, body: { n: 42 }, headers: { "x-invoke-header": "invoke-value" }, retries: 0,
  });
  record("invoke-parent", context, "invoke-result", res);
  await step("invoke-parent", context, "after-invoke", () => res.isFailed);
  return res.body;
}, options);
const invokeHandler = serveMany({ parent, child }, options).fetch;

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

async function send(res, response) {
  const headers = {};
  response.headers.forEach((v, k) => {
    headers[k] = v;
  });
  const buf = Buffer.from(await response.arrayBuffer());
  res.writeHead(response.status, headers);
  res.end(buf);
}

const json = (obj, status = 200) =>
  new Response(JSON.stringify(obj), { status, headers: { "content-type": "application/json" } });

async function attempt(fn) {
  try {
    return json({ ok: true, result: await fn() });
  } catch (err) {
    return json({ ok: false, error: { name: err?.name, message: String(err?.message ?? err) }, guard: guardLog() });
  }
}

let self = "";
const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, self);
    const raw = await readBody(req);
    const p = url.pathname;
    if (p === "/_results") return send(res, json(results));
    if (p.startsWith("/_thirdparty/")) return send(res, thirdParty(req, p, raw.toString("utf8")));
    if (p === "/_trigger") {
      const t = JSON.parse(raw.toString("utf8") || "{}");
      return send(res, await attempt(() => client.trigger({
        url: t.workflow.startsWith("/") ? `${self}${t.workflow}` : `${self}/wf/${t.workflow}`,
        body: t.body ?? {},
        workflowRunId: t.workflowRunId,
        headers: t.headers,
        retries: t.retries,
        label: t.label,
        delay: t.delay,
      })));
    }
    if (p === "/_notify") {
      const t = JSON.parse(raw.toString("utf8") || "{}");
      return send(res, await attempt(() => client.notify(t)));
    }
    if (p === "/_logs") {
      const t = JSON.parse(raw.toString("utf8") || "{}");
      return send(res, await attempt(() => client.logs(t)));
    }
    if (p === "/_waiters") {
      const t = JSON.parse(raw.toString("utf8") || "{}");
      return send(res, await attempt(() => client.getWaiters(t)));
    }
    if (p === "/_broken") {
      Object.assign(broken, JSON.parse(raw.toString("utf8") || "{}"));
      return send(res, json({ ok: true, result: broken }));
    }
    if (p === "/_client") {
      const t = JSON.parse(raw.toString("utf8") || "{}");
      if (!CLIENT_METHODS.has(t.method)) return send(res, json({ ok: false, error: { message: `no method ${t.method}` } }, 400));
      const [owner, name] = t.method.startsWith("dlq.") ? [client.dlq, t.method.slice(4)] : [client, t.method];
      return send(res, await attempt(() => owner[name](...(t.args ?? []))));
    }
    if (p === "/_cancel") {
      const t = JSON.parse(raw.toString("utf8") || "{}");
      return send(res, await attempt(() => client.cancel({ ids: t.ids })));
    }
    const wf = p.startsWith("/wf/") ? WORKFLOWS[p.slice(4)] : undefined;
    if (!wf && !p.startsWith("/invoke/")) return send(res, json({ error: `no route ${p}` }, 404));
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) {
      if (Array.isArray(v)) v.forEach((x) => headers.append(k, x));
      else if (v !== undefined) headers.set(k, v);
    }
    const body = req.method === "GET" || req.method === "HEAD" ? undefined : raw;
    const request = new Request(url, { method: req.method, headers, body });
    return send(res, wf ? await wf.handler(request) : await invokeHandler(request, {}));
  } catch (err) {
    res.writeHead(500, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: String(err?.stack ?? err) }));
  }
});

const port = Number(process.argv[2] ?? 0);
server.listen(port, "127.0.0.1", () => {
  const addr = server.address();
  self = `http://127.0.0.1:${addr.port}`;
  process.stdout.write(JSON.stringify({ port: addr.port }) + "\n");
});
