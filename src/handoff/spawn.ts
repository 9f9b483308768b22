/**
 * tableflip-style successor spawning: the running server starts its successor with a private
 * SOCK_SEQPACKET socketpair end as fd 3 ($UA_HANDOFF_FD=3), runs the handshake over it, and reports
 * the outcome. A successor that crashes, hangs or aborts is killed (SIGKILL) and the caller carries on.
 *
 * Ownership: both socketpair ends are owned here; the child's end is closed in this process right
 * after the spawn (the child has its own copy as fd 3), ours when the handshake ends, on every path.
 */
import type { Subprocess } from "bun";
import { UnixSeqpacket } from "../socket.ts";
import { UnixAncillaryError } from "../errors.ts";
import type { UpgradeResult } from "./result.ts";
import { HANDOFF_FD_ENV } from "./client.ts";

/** How HandoffServer.spawn / spawnSuccessor start the successor (environment, cwd, stdio, time limit). */
export interface SpawnOptions {
  /** Extra environment for the child (merged over process.env). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Handshake time limit (spawn -> ready), default: the HandoffServer's timeoutMs. */
  timeoutMs?: number;
  stdin?: "inherit" | "ignore" | "pipe";
  stdout?: "inherit" | "ignore" | "pipe";
  stderr?: "inherit" | "ignore" | "pipe";
}

/**
 * How a spawned successor ended: `ok` with its pid and the UpgradeResult (it serves now), or the error
 * (it was killed; this process keeps serving).
 */
export type SpawnResult =
  | { ok: true; child: Subprocess; pid: number; result: UpgradeResult; latencyMs: number }
  | { ok: false; child: Subprocess | null; error: Error; latencyMs: number };

type Attempt = { ok: true; result: UpgradeResult } | { ok: false; error: Error };

/** @internal Used by HandoffServer.spawn. */
export async function spawnWith(cmd: string[], opts: SpawnOptions, handshake: (sock: UnixSeqpacket) => Promise<Attempt>): Promise<SpawnResult> {
  if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((c) => typeof c === "string")) throw new TypeError("spawnSuccessor: cmd must be a non-empty array of strings");
  const started = performance.now();
  const [parentEnd, childEnd] = UnixSeqpacket.pair();
  let child: Subprocess;
  try {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...opts.env })) if (v !== undefined) env[k] = v;
    env[HANDOFF_FD_ENV] = "3";
    child = Bun.spawn(cmd, {
      cwd: opts.cwd,
      env,
      stdio: [opts.stdin ?? "inherit", opts.stdout ?? "inherit", opts.stderr ?? "inherit", childEnd.fd],
    });
  } catch (e) {
    parentEnd.close();
    childEnd.close();
    return { ok: false, child: null, error: e as Error, latencyMs: performance.now() - started };
  }
  childEnd.close();
  const timeoutMs = opts.timeoutMs ?? 30_000;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const attempt = handshake(parentEnd);
  const outcome = await Promise.race([
    attempt,
    new Promise<Attempt>((resolve) => {
      // Safety net: the handshake has its own deadline; this also covers a child that never connects.
      timer = setTimeout(() => resolve({ ok: false, error: new UnixAncillaryError("ERR_UA_TIMEOUT", `successor did not become ready within ${timeoutMs} ms`) }), timeoutMs + 1000);
    }),
  ]);
  if (timer) clearTimeout(timer);
  const latencyMs = performance.now() - started;
  if (outcome.ok) {
    child.unref();
    return { ok: true, child, pid: child.pid, result: outcome.result, latencyMs };
  }
  parentEnd.close();
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await child.exited.catch(() => {});
  const exit = child.signalCode ? ` (child ${child.pid} ended by ${child.signalCode})` : child.exitCode !== null ? ` (child ${child.pid} exited with ${child.exitCode})` : "";
  const error = outcome.error;
  if (exit && !error.message.includes("child")) error.message += exit;
  return { ok: false, child, error, latencyMs };
}
