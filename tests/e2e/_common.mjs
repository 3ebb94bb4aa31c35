// Shared by the e2e scripts: environment checks and output helpers. Loopback use only.
import { createFetch } from "@sapiom/fetch";

/** Exit code for a thrown error (SDK or network); 3 is used for a non-2xx answer. */
export const EXIT_ERROR = 1;
export const EXIT_HTTP = 3;
export const EXIT_USAGE = 2;

/** Stop with a usage error (exit 2) before any request is made. */
export function usage(message) {
  console.log(JSON.stringify({ error: { name: "UsageError", message } }));
  process.exit(EXIT_USAGE);
}

/**
 * SAPIOM_BASE_URL, checked: it must be set and non-empty (an empty value sends the SDK to the real
 * https://api.sapiom.ai) and must not end in /v1 (the SDK adds /v1 itself).
 */
export function sapiomBaseUrl() {
  const base = process.env.SAPIOM_BASE_URL;
  if (!base) usage("SAPIOM_BASE_URL must be set to the simulator's origin, e.g. http://127.0.0.1:8080");
  if (/\/v1\/?$/.test(base)) usage(`SAPIOM_BASE_URL must be the origin without /v1 (got ${base})`);
  return base.replace(/\/$/, "");
}

/** createFetch with the test defaults: closed failure mode, so a misconfiguration fails loudly. */
export function makeSapiomFetch(overrides = {}) {
  return createFetch({
    apiKey: process.env.SAPIOM_API_KEY || "sk_test_qstash_sim",
    agentName: process.env.SAPIOM_AGENT_NAME || "my-agent",
    baseURL: sapiomBaseUrl(),
    failureMode: "closed",
    ...overrides,
  });
}

/** The body as JSON when it parses, else as text. */
export async function readBody(response) {
  const text = await response.text();
  if (text === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Print a thrown error as one JSON line and set a failing exit code (without cutting off /complete). */
export function reportError(err, extra = {}) {
  const error = { name: err?.name ?? "Error", message: String(err?.message ?? err) };
  // undici's "fetch failed" hides the useful part (ECONNREFUSED, ...) in err.cause.
  if (err?.cause) error.cause = String(err.cause.code ?? err.cause.message ?? err.cause);
  console.log(JSON.stringify({ ...extra, error }));
  process.exitCode = EXIT_ERROR;
}
