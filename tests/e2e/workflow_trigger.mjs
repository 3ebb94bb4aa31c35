// Triggers one run with the real @upstash/workflow 1.3.3 Client (for tests/api_v2/test_sdk_ts.py). Loopback only.
//
//   QSTASH_DEV=true QSTASH_DEV_PORT=8080 node workflow_trigger.mjs '{"url":"http://127.0.0.1:9000/wf","body":{}}'
//
// Prints one JSON line: {"ok": true, "result": {workflowRunId}, "guard": [...]} or {"ok": false, "error", "guard"};
// "guard" lists what _guard.mjs refused (anything off this machine: the dev-server download, a spawn).
import { guardLog, installGuard } from "./_guard.mjs";

installGuard();
const { Client } = await import("@upstash/workflow");

const input = JSON.parse(process.argv[2] ?? "{}");
let line;
try {
  // The token is ignored in dev mode (QSTASH_DEV=true): the SDK uses the dev server's default user.
  const client = new Client({ token: input.token ?? "unused-in-dev-mode", baseUrl: input.baseUrl });
  const result = await client.trigger({ url: input.url, body: input.body ?? {}, retries: 0 });
  line = { ok: true, result };
} catch (err) {
  line = { ok: false, error: { name: err?.name ?? "Error", message: String(err?.message ?? err) } };
}
line.guard = guardLog();
process.stdout.write(JSON.stringify(line) + "\n");
