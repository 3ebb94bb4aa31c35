// Loopback guard for the e2e drivers: nothing these scripts run may reach an address off this machine,
// start a process, or print to stdout behind the driver's back.
//
// Import it FIRST (before any SDK), then call installGuard(). It patches, for this process only:
//   - globalThis.fetch                 (the SDKs' own requests, @upstash/qstash's edge-runtime dev probe)
//   - node:http / node:https get+request (@upstash/qstash's dev-server probe and binary download)
//   - node:child_process spawn/exec*   (@upstash/qstash spawning the downloaded `qstash dev` binary, `tar`)
// and calls module.syncBuiltinESMExports() so that the SDK's `await import("node:https")` sees the patch.
// A blocked attempt throws LoopbackGuardError (and is recorded in guardLog()), so a test gets a fast,
// deterministic failure instead of a DNS lookup or a download.
//
// console.log/info/debug are redirected to stderr: the SDK logs there ("[QStash Dev] Server already
// running ..."), and our stdout carries only the driver's JSON lines.
import childProcess from "node:child_process";
import http from "node:http";
import https from "node:https";
import { syncBuiltinESMExports } from "node:module";

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);
const attempts = [];

export class LoopbackGuardError extends Error {
  constructor(message) {
    super(message);
    this.name = "LoopbackGuardError";
  }
}

export function isLoopback(hostname) {
  if (!hostname) return false;
  const h = String(hostname).toLowerCase();
  return LOOPBACK_HOSTS.has(h) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function hostOf(target, options) {
  // http.get(url[, options][, cb]) | http.get(options[, cb])
  if (typeof target === "string" || target instanceof URL) {
    try {
      return new URL(String(target)).hostname;
    } catch {
      return undefined;
    }
  }
  const o = target ?? options ?? {};
  return o.hostname ?? (o.host ? String(o.host).replace(/:\d+$/, "") : "localhost");
}

function block(kind, what) {
  attempts.push({ kind, target: String(what) });
  throw new LoopbackGuardError(`blocked ${kind} to ${what}: the e2e drivers only talk to 127.0.0.1`);
}

/** Every blocked attempt so far: [{kind, target}]. */
export function guardLog() {
  return attempts.slice();
}

let installed = false;

export function installGuard({ redirectConsole = true } = {}) {
  if (installed) return;
  installed = true;

  const realFetch = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    const url = typeof input === "string" || input instanceof URL ? String(input) : input?.url;
    let host;
    try {
      host = new URL(url).hostname;
    } catch {
      host = undefined;
    }
    if (!isLoopback(host)) block("fetch", url);
    return realFetch(input, init);
  };

  for (const [name, mod] of [["http", http], ["https", https]]) {
    for (const fn of ["get", "request"]) {
      const real = mod[fn];
      mod[fn] = function guarded(target, options, cb) {
        const host = hostOf(target, typeof options === "object" ? options : undefined);
        if (!isLoopback(host)) block(`${name}.${fn}`, typeof target === "object" && !(target instanceof URL) ? host : target);
        return real.call(this, target, options, cb);
      };
    }
  }

  for (const fn of ["spawn", "spawnSync", "exec", "execSync", "execFile", "execFileSync", "fork"]) {
    childProcess[fn] = (file, ...rest) => block(`child_process.${fn}`, [file, ...(Array.isArray(rest[0]) ? rest[0] : [])].join(" "));
  }
  syncBuiltinESMExports();

  if (redirectConsole) {
    const toErr = (...a) => console.error(...a);
    console.log = toErr;
    console.info = toErr;
    console.debug = toErr;
  }
}
