// Drives the real @upstash/qstash 2.12.0 Client / Receiver, for the pytest e2e suite. Loopback only.
//
//   node qstash_call.mjs '{"baseUrl":"http://127.0.0.1:8080","token":"t","method":"publishJSON",
//                          "args":[{"url":"http://127.0.0.1:9000/hook","body":{"hello":"world"}}]}'
//   echo '<same JSON>' | node qstash_call.mjs          (stdin when there is no argument, or the argument is "-")
//   node qstash_call.mjs '[{...}, {...}]'               (a script: several calls in one process)
//   node qstash_call.mjs '{"defaults":{"baseUrl":...,"token":...},"calls":[{...}, ...]}'
//
// One command:
//   baseUrl, token   Client config (ignored by the SDK in dev mode)
//   devMode          passed as Client/Receiver config devMode (true = QSTASH_DEV semantics: the SDK uses
//                    http://127.0.0.1:${QSTASH_DEV_PORT||8080} and the dev token, and probes GET /v2/keys
//                    before the first request; see tests/api_v2/test_sdk_ts.py). Omitted = the SDK reads env QSTASH_DEV.
//   retry            false | {"retries": n, "backoffMs": m}   (SDK default: 5 retries on network errors)
//   config           merged into the Client config last (headers, enableTelemetry, ...)
//   method           see METHODS below, e.g. "publishJSON", "queue.enqueue", "messages.cancel",
//                    "schedules.create", "dlq.retry", "flowControl.pin", "Receiver.verify"
//   args             positional arguments (default [])
//   queueName        for queue.*: client.queue({queueName})
//   receiver         for Receiver.verify: {currentSigningKey, nextSigningKey, devMode?}
//   as               a name under which later calls of the same script can $ref this call's output
// Value forms inside args: {"$date": ms} -> Date, {"$bytes_b64": "..."} -> Uint8Array,
//   {"$ref": "NAME.result.messageId"} or {"$ref": "0.result.0.messageId"} -> an earlier call's output.
// Helpers: "$http" [{method, path|url, headers, body}] (raw fetch, relative to baseUrl; answers
//   {status, headers, body}), "$guardLog" (blocked non-loopback attempts so far). No sleep helper: the
//   tests move the simulator's virtual clock instead of waiting.
//
// Prints one JSON line per call: {"ok": true, "result": ..., "ms": n} or
//   {"ok": false, "error": {"name", "message", "status"?, "cause"?, ...}, "ms": n}. Exit 0 either way;
//   2 = the input itself is unusable, 1 = a driver bug. SDK console output goes to stderr.
import { installGuard, guardLog, isLoopback, LoopbackGuardError } from "./_guard.mjs";

installGuard();
const { Client, Receiver } = await import("@upstash/qstash");

const MAX_CALLS = 1000;

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function usage(message) {
  out({ ok: false, error: { name: "UsageError", message } });
  process.exit(2);
}

async function readInput() {
  const arg = process.argv[2];
  if (arg !== undefined && arg !== "-") return arg;
  if (process.env.QSTASH_CALL) return process.env.QSTASH_CALL;
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString("utf8");
}

// ---------------------------------------------------------------------------------------------------
// Values

function getPath(root, path) {
  let cur = root;
  for (const part of path) {
    if (cur === null || cur === undefined) return undefined;
    cur = cur[Array.isArray(cur) && /^\d+$/.test(part) ? Number(part) : part];
  }
  return cur;
}

function revive(value, outputs) {
  if (Array.isArray(value)) return value.map((v) => revive(v, outputs));
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1) {
      if (keys[0] === "$date") return new Date(value.$date);
      if (keys[0] === "$bytes_b64") return new Uint8Array(Buffer.from(value.$bytes_b64, "base64"));
      if (keys[0] === "$ref") {
        const [head, ...rest] = String(value.$ref).split(".");
        const base = /^\d+$/.test(head) ? outputs.list[Number(head)] : outputs.named[head];
        if (base === undefined) throw new UsageErr(`$ref ${value.$ref}: no earlier call ${head}`);
        return getPath(base, rest);
      }
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v, outputs)]));
  }
  return value;
}

function jsonable(value, depth = 0) {
  if (depth > 50) return "<too deep>";
  if (value === undefined) return null;
  if (value instanceof Date) return value.getTime();
  if (value instanceof Uint8Array) return { $bytes_b64: Buffer.from(value).toString("base64") };
  if (value instanceof Headers) return Object.fromEntries(value);
  if (Array.isArray(value)) return value.map((v) => jsonable(v, depth + 1));
  if (value && typeof value === "object") {
    const o = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) o[k] = jsonable(v, depth + 1);
    return o;
  }
  if (typeof value === "bigint") return value.toString();
  return value;
}

class UsageErr extends Error {
  constructor(m) {
    super(m);
    this.name = "UsageError";
  }
}

function errorInfo(err) {
  const e = { name: err?.name ?? "Error", message: String(err?.message ?? err) };
  if (err?.status !== undefined) e.status = err.status;
  for (const k of ["limit", "remaining", "reset", "limitRequests", "limitTokens", "remainingRequests",
    "remainingTokens", "resetRequests", "resetTokens"]) {
    if (err?.[k] !== undefined && err[k] !== null) e[k] = err[k];
  }
  // undici's "fetch failed" hides ECONNREFUSED & co. in err.cause.
  if (err?.cause) e.cause = String(err.cause.code ?? err.cause.message ?? err.cause);
  if (err instanceof LoopbackGuardError) e.guard = true;
  return e;
}

// ---------------------------------------------------------------------------------------------------
// Methods

function makeClient(cmd) {
  const config = {};
  if (cmd.baseUrl !== undefined) config.baseUrl = cmd.baseUrl;
  if (cmd.token !== undefined) config.token = cmd.token;
  if (cmd.devMode !== undefined) config.devMode = cmd.devMode;
  if (cmd.retry === false) config.retry = false;
  else if (cmd.retry && typeof cmd.retry === "object") {
    const ms = cmd.retry.backoffMs ?? 0;
    config.retry = { retries: cmd.retry.retries ?? 0, backoff: () => ms };
  }
  Object.assign(config, cmd.config ?? {});
  const client = new Client(config);
  // Fail fast: the SDK retries every fetch exception (the guard's too) 5 times, ~4 s of backoff.
  let host;
  try {
    host = new URL(client.http.baseUrl).hostname;
  } catch {
    host = undefined;
  }
  if (!isLoopback(host)) {
    throw new LoopbackGuardError(`base URL ${client.http.baseUrl} is not loopback: the e2e drivers only talk to 127.0.0.1`);
  }
  return client;
}

/** method name -> (client factory, command, args) => promise. */
const METHODS = {
  publish: (c, _cmd, a) => c().publish(...a),
  publishJSON: (c, _cmd, a) => c().publishJSON(...a),
  batch: (c, _cmd, a) => c().batch(...a),
  batchJSON: (c, _cmd, a) => c().batchJSON(...a),
  logs: (c, _cmd, a) => c().logs(...a),
  events: (c, _cmd, a) => c().events(...a),
};
const GROUPS = {
  queue: ["upsert", "get", "list", "delete", "enqueue", "enqueueJSON", "pause", "resume"],
  messages: ["get", "cancel", "delete", "deleteMany", "deleteAll"],
  schedules: ["create", "get", "list", "delete", "pause", "resume"],
  urlGroups: ["addEndpoints", "removeEndpoints", "get", "list", "delete"],
  topics: ["addEndpoints", "removeEndpoints", "get", "list", "delete"],
  dlq: ["listMessages", "delete", "deleteMany", "retry"],
  flowControl: ["get", "getGlobalParallelism", "pause", "resume", "pin", "unpin", "resetRate"],
  workflow: ["cancel"],
};
for (const [group, names] of Object.entries(GROUPS)) {
  for (const name of names) {
    METHODS[`${group}.${name}`] = group === "queue"
      ? (c, cmd, a) => c().queue(cmd.queueName === undefined ? undefined : { queueName: cmd.queueName })[name](...a)
      : (c, _cmd, a) => c()[group][name](...a);
  }
}
METHODS["Receiver.verify"] = (_c, cmd, a) => {
  const r = cmd.receiver ?? {};
  const config = {};
  for (const k of ["currentSigningKey", "nextSigningKey", "devMode"]) if (r[k] !== undefined) config[k] = r[k];
  if (cmd.devMode !== undefined && config.devMode === undefined) config.devMode = cmd.devMode;
  return new Receiver(config).verify(...a);
};
METHODS.$guardLog = async () => guardLog();
METHODS.$http = async (_c, cmd, [req = {}]) => {
  const url = req.url ?? `${String(cmd.baseUrl ?? "").replace(/\/$/, "")}${req.path ?? "/"}`;
  const headers = { ...(req.headers ?? {}) };
  let body = req.body;
  if (body !== undefined && body !== null && typeof body !== "string" && !(body instanceof Uint8Array)) {
    body = JSON.stringify(body);
    if (!Object.keys(headers).some((k) => k.toLowerCase() === "content-type")) headers["Content-Type"] = "application/json";
  }
  const res = await fetch(url, { method: req.method ?? "GET", headers, body: body ?? undefined });
  const text = await res.text();
  let parsed = text;
  try {
    parsed = text === "" ? null : JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: res.status, headers: Object.fromEntries(res.headers), body: parsed };
};

async function runOne(cmd, outputs) {
  const t0 = performance.now();
  let line;
  try {
    if (!cmd || typeof cmd !== "object" || Array.isArray(cmd)) throw new UsageErr("a call must be a JSON object");
    const fn = METHODS[cmd.method];
    if (!fn) throw new UsageErr(`unknown method ${JSON.stringify(cmd.method)}; known: ${Object.keys(METHODS).join(", ")}`);
    const args = revive(cmd.args ?? [], outputs);
    if (!Array.isArray(args)) throw new UsageErr('"args" must be an array');
    let client;
    const lazyClient = () => (client ??= makeClient(cmd));
    const result = await fn(lazyClient, cmd, args);
    line = { ok: true, result: jsonable(result) };
  } catch (err) {
    line = { ok: false, error: errorInfo(err) };
  }
  line.ms = Math.round((performance.now() - t0) * 10) / 10;
  return line;
}

// ---------------------------------------------------------------------------------------------------

const text = await readInput();
let input;
try {
  input = JSON.parse(text);
} catch (err) {
  usage(`the input is not valid JSON: ${err.message}`);
}

let calls;
let defaults = {};
let stopOnError = false;
if (Array.isArray(input)) calls = input;
else if (input && typeof input === "object" && Array.isArray(input.calls)) {
  calls = input.calls;
  defaults = input.defaults ?? {};
  stopOnError = Boolean(input.stopOnError);
} else calls = [input];
if (calls.length > MAX_CALLS) usage(`at most ${MAX_CALLS} calls per process (got ${calls.length})`);

try {
  const outputs = { list: [], named: {} };
  for (const raw of calls) {
    const cmd = raw && typeof raw === "object" && !Array.isArray(raw) ? { ...defaults, ...raw } : raw;
    const line = await runOne(cmd, outputs);
    outputs.list.push(line);
    if (cmd?.as) outputs.named[cmd.as] = line;
    out(line);
    if (stopOnError && !line.ok) break;
  }
} catch (err) {
  process.stderr.write(`qstash_call.mjs: driver bug: ${err?.stack ?? err}\n`);
  process.exitCode = 1;
}
