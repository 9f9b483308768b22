/**
 * A pool supervisor as a program: `bun examples/pool-supervisor.ts` runs WORKERS copies of
 * examples/pool-app.ts (or APP) on PORT. SIGHUP: rolling restart. SIGUSR2: the supervisor replaces
 * itself (handoff to a fresh copy of this script; its workers take over, the old ones drain).
 * SIGTERM/SIGINT: drain everything and exit. Every event is one JSON line on stdout.
 *
 *   PORT=8080 WORKERS=4 CONTROL=/run/app/pool.sock bun examples/pool-supervisor.ts
 *   bun src/pool/cli.ts status /run/app/pool.sock
 *
 * Env: PORT (default 0 = ephemeral), WORKERS (2), APP, CONTROL, WINDOW_MS (1000), GRACE_MS (10000),
 * PARALLELISM (1), READY_TIMEOUT_MS (30000), CRASH_MAX (5), CRASH_WINDOW_MS (60000), BACKOFF_MS (100), BALANCE (shared|reuseport).
 */
import { readdirSync } from "node:fs";
import { startPool } from "unix-ancillary/pool";

const log = (event: string, data: Record<string, unknown> = {}) => console.log(JSON.stringify({ event, pid: process.pid, t: Date.now(), ...data }));
const fdCount = () => readdirSync("/proc/self/fd").length;
const env = process.env;

const pool = await startPool({
  script: env.APP ?? new URL("./pool-app.ts", import.meta.url).pathname,
  workers: Number(env.WORKERS ?? 2),
  listen: [{ name: "http", port: Number(env.PORT ?? 0), host: "127.0.0.1" }],
  controlPath: env.CONTROL,
  drain: { windowMs: Number(env.WINDOW_MS ?? 1000), graceMs: Number(env.GRACE_MS ?? 10_000) },
  parallelism: Number(env.PARALLELISM ?? 1),
  balance: env.BALANCE === "reuseport" ? "reuseport" : "shared",
  readyTimeoutMs: Number(env.READY_TIMEOUT_MS ?? 30_000),
  crashLoop: { maxRestarts: Number(env.CRASH_MAX ?? 5), windowMs: Number(env.CRASH_WINDOW_MS ?? 60_000) },
  backoff: { initialMs: Number(env.BACKOFF_MS ?? 100), maxMs: 2000 },
  handleSignals: true,
  upgradeCommand: [process.execPath, ...process.argv.slice(1)],
});
const info = (w: { id: number; slot: number; pid: number }) => ({ id: w.id, slot: w.slot, workerPid: w.pid });
pool.on("worker-ready", (w) => log("worker-ready", info(w)));
pool.on("worker-exit", (w) => log("worker-exit", { ...info(w), code: w.code, signal: w.signal, expected: w.expected }));
pool.on("worker-crash", (c) => log("worker-crash", c));
pool.on("crash-loop", (e) => log("crash-loop", { code: e.code, slot: e.slot, message: e.message }));
pool.on("reload-done", (r) => log("reload-done", { ...r, pids: pool.pids(), fds: fdCount() }));
pool.on("reload-failed", (e) => log("reload-failed", { code: e.code, message: e.message, pids: pool.pids(), fds: fdCount() }));
pool.on("upgrade-done", (r) => log("upgrade-done", { successor: r.pid, latencyMs: Math.round(r.latencyMs) }));
pool.on("upgrade-failed", (e) => log("upgrade-failed", { message: e.message }));
pool.on("closed", () => log("closed"));
log("started", { port: pool.sockets[0]!.info.port, pids: pool.pids(), fds: fdCount(), generation: pool.generation });
