// The example from Sapiom's messaging page (processOrder), unchanged except for where it sends requests.
//
//   npm ci --prefix examples/sapiom-app                 # once: @sapiom/fetch 0.3.0, from package-lock.json
//   make serve ARGS='--payment x402'                    # in another terminal
//   SAPIOM_BASE_URL=http://127.0.0.1:8080 node examples/sapiom-app/app.js
//
// SAPIOM_BASE_URL  the Sapiom API the SDK talks to (the simulator's origin, without /v1)
// QSTASH_BASE      the messaging gateway's origin (default: SAPIOM_BASE_URL, since the simulator serves both;
//                  without either, the real https://upstash.services.sapiom.ai)
// SAPIOM_API_KEY   your key; against a local simulator (SAPIOM_BASE_URL set) any non-empty key works and
//                  names the account, so it defaults to sk_test_qstash_sim there
//
// The api.example.com destinations are recorded by the simulator as virtual deliveries (see
// GET /_sim/deliveries); loopback destinations are really called.
import { createFetch } from "@sapiom/fetch";

const SIMULATED = Boolean(process.env.SAPIOM_BASE_URL);

const sapiomFetch = createFetch({
  apiKey: process.env.SAPIOM_API_KEY || (SIMULATED ? "sk_test_qstash_sim" : undefined),
  agentName: "my-agent",
});

const GATEWAY = (process.env.QSTASH_BASE || process.env.SAPIOM_BASE_URL || "https://upstash.services.sapiom.ai")
  .replace(/\/$/, "");
const baseUrl = `${GATEWAY}/v1/qstash`;
const DEST = (process.env.DEST_BASE || "https://api.example.com").replace(/\/$/, "");

async function processOrder(orderId) {
  // Fire-and-forget: notify the fulfillment service
  const published = await sapiomFetch(`${baseUrl}/publish/${DEST}/fulfillment`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ orderId, action: "ship" }),
  });
  check(published, "publish");

  // Ordered queue: send confirmation emails sequentially
  const enqueued = await sapiomFetch(`${baseUrl}/enqueue/email-queue/${DEST}/send-email`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ orderId, template: "order-confirmation" }),
  });
  check(enqueued, "enqueue");

  // Batch: notify multiple services at once
  const batched = await sapiomFetch(`${baseUrl}/batch`, {
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
  check(batched, "batch");

  console.log(`Order ${orderId} processing dispatched`);
}

// Not in the product page's example: fail loudly when a call was not accepted (e.g. an unpaid 402).
function check(response, what) {
  if (!response.ok) {
    console.error(`${what}: HTTP ${response.status}`);
    process.exitCode = 1;
  }
}

await processOrder("ord_456");
