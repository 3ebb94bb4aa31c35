// The messaging page's processOrder("ord_456") example, run with the real @sapiom/fetch against qstash-sim.
//
//   SAPIOM_BASE_URL=http://127.0.0.1:8080      the simulator (Sapiom API and, by default, the gateway)
//   QSTASH_SIM_URL=http://127.0.0.1:8080       the gateway origin, if different (default SAPIOM_BASE_URL)
//   DEST_BASE=http://127.0.0.1:9000            where the destinations live (/fulfillment, /send-email, ...)
//   SAPIOM_API_KEY, SAPIOM_AGENT_NAME          optional (defaults: sk_test_qstash_sim, my-agent)
//
// Prints one JSON line per call: {"call": n, "method", "url", "status", "body"}; then {"done": true}.
// Exit 0 when every call answered 2xx, 3 when one did not, 1 on a thrown error (printed as
// {"error": {"name": "AuthorizationDeniedError", "message": ...}}), 2 on a configuration mistake.
// It never calls process.exit() after the calls, so the SDK's fire-and-forget /complete still goes out.
import { EXIT_HTTP, makeSapiomFetch, readBody, reportError, sapiomBaseUrl, usage } from "./_common.mjs";

const SIM = (process.env.QSTASH_SIM_URL || sapiomBaseUrl()).replace(/\/$/, "");
const DEST = (process.env.DEST_BASE || "").replace(/\/$/, "");
if (!DEST) usage("DEST_BASE must be set, e.g. http://127.0.0.1:9000");

const rawFetch = makeSapiomFetch();
let calls = 0;
// Logs each call and its answer, leaving the example's own code untouched.
const sapiomFetch = async (url, init) => {
  const n = ++calls;
  const response = await rawFetch(url, init);
  const body = await readBody(response.clone());
  console.log(JSON.stringify({ call: n, method: init?.method ?? "GET", url, status: response.status, body }));
  if (!response.ok) process.exitCode = EXIT_HTTP;
  return response;
};

const baseUrl = `${SIM}/v1/qstash`;

// ---- the example, as on the product page (only the example.com hosts replaced by DEST) ----
async function processOrder(orderId) {
  // Fire-and-forget: notify the fulfillment service
  await sapiomFetch(`${baseUrl}/publish/${DEST}/fulfillment`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ orderId, action: "ship" }),
  });

  // Ordered queue: send confirmation emails sequentially
  await sapiomFetch(`${baseUrl}/enqueue/email-queue/${DEST}/send-email`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ orderId, template: "order-confirmation" }),
  });

  // Batch: notify multiple services at once
  await sapiomFetch(`${baseUrl}/batch`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify([
      {
        destination: `${DEST}/analytics`,
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ event: "order.completed", orderId }),
      },
      {
        destination: `${DEST}/inventory`,
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ action: "decrement", orderId }),
      },
    ]),
  });

  console.error(`Order ${orderId} processing dispatched`);
}
// ---- end of the example ----

try {
  await processOrder(process.env.ORDER_ID || "ord_456");
  console.log(JSON.stringify({ done: true, calls }));
} catch (err) {
  reportError(err, { call: calls });
}
