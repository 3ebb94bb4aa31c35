// One call through the real @sapiom/fetch, for the pytest e2e suite.
//
//   node sapiom_call.mjs '{"method":"POST","url":"http://127.0.0.1:8080/v1/qstash/publish/http://127.0.0.1:9000/hook",
//                          "headers":{"Content-Type":"application/json"},"body":{"hello":"world"},
//                          "config":{"failureMode":"open","serviceName":"messaging"}}'
//   node sapiom_call.mjs POST http://.../v1/qstash/publish/http://127.0.0.1:9000/hook '{"hello":"world"}'
//   SAPIOM_CALL='{...same JSON...}' node sapiom_call.mjs
//
// With the METHOD URL [BODY] form, headers come from SAPIOM_CALL_HEADERS (JSON object; default
// Content-Type: application/json when a body is given). A body that is not a string is JSON-encoded.
// "config" is merged into createFetch's options (agentName, agentId, serviceName, traceId, failureMode...).
// There is no per-request "__sapiom" override: @sapiom/fetch 0.3.0 rebuilds the Request with
// new Request(input, init), which drops it, so only createFetch options reach the transaction.
// Needs SAPIOM_BASE_URL. Prints one JSON line: {"status", "headers", "body"} (exit 0 even for a non-2xx
// answer, which is data here) or {"error": {"name", "message"}} (exit 1).
import { makeSapiomFetch, readBody, reportError, usage } from "./_common.mjs";

function parseJson(text, what) {
  try {
    return JSON.parse(text);
  } catch (err) {
    usage(`${what} is not valid JSON: ${err.message}`);
  }
}

function spec() {
  const [a, b, c] = process.argv.slice(2);
  if (a === undefined && process.env.SAPIOM_CALL) return parseJson(process.env.SAPIOM_CALL, "SAPIOM_CALL");
  if (a !== undefined && a.trimStart().startsWith("{")) return parseJson(a, "the call spec");
  if (a === undefined || b === undefined) {
    usage("usage: sapiom_call.mjs '<json spec>' | sapiom_call.mjs METHOD URL [BODY] (or SAPIOM_CALL=<json spec>)");
  }
  const headers = process.env.SAPIOM_CALL_HEADERS ? parseJson(process.env.SAPIOM_CALL_HEADERS, "SAPIOM_CALL_HEADERS") : {};
  return { method: a, url: b, headers, body: c };
}

const s = spec();
if (typeof s.url !== "string" || !s.url) usage('the call spec needs "url"');
const headers = { ...(s.headers ?? {}) };
let body = s.body;
if (body !== undefined && body !== null && typeof body !== "string") body = JSON.stringify(body);
if (body != null && !Object.keys(headers).some((k) => k.toLowerCase() === "content-type")) {
  headers["Content-Type"] = "application/json";
}
const init = { method: s.method ?? "GET", headers };
if (body != null) init.body = body;

try {
  const sapiomFetch = makeSapiomFetch(s.config ?? {});
  const response = await sapiomFetch(s.url, init);
  const out = { status: response.status, headers: Object.fromEntries(response.headers), body: await readBody(response) };
  console.log(JSON.stringify(out));
} catch (err) {
  reportError(err);
}
