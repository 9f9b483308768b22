/**
 * Runs examples/pool-supervisor.ts as a child process and reads its JSON-line events, for the pool
 * tests. next() waits for the next unread event of the given kinds (generous deadline).
 */
import type { Subprocess } from "bun";

export type PoolEvent = { event: string; pid: number; [k: string]: unknown };

export interface SupervisorHandle {
  proc: Subprocess<"ignore", "pipe", "inherit">;
  events: PoolEvent[];
  next(...kinds: string[]): Promise<PoolEvent>;
  stop(): Promise<void>;
}

const SCRIPT = new URL("../../examples/pool-supervisor.ts", import.meta.url).pathname;

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * `listenFd`: passed as fd 3 with LISTEN_FDS=1, LISTEN_FDNAMES=http and LISTEN_PID set to the
 * supervisor's own pid (through `sh -c 'LISTEN_PID=$$ exec ...'`), as systemd socket activation does.
 */
export async function startSupervisor(env: Record<string, string>, deadlineMs = 120_000, listenFd?: number): Promise<SupervisorHandle> {
  const cmd = listenFd === undefined ? [process.execPath, SCRIPT] : ["/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=http exec "$0" "$1"`, process.execPath, SCRIPT];
  // a child Bun takes seconds to start under qemu-user on a loaded machine
  const emulated = !!process.env.BUN_TEST_ABI && /arm64|aarch64/.test(process.env.BUN_TEST_ABI);
  const proc = Bun.spawn(cmd, { env: { ...process.env, READY_TIMEOUT_MS: emulated ? "300000" : "30000", CRASH_WINDOW_MS: emulated ? "1200000" : "60000", ...env }, stdio: ["ignore", "pipe", "inherit", ...(listenFd === undefined ? [] : [listenFd])] }) as unknown as Subprocess<"ignore", "pipe", "inherit">;
  const events: PoolEvent[] = [];
  let cursor = 0;
  let wake = null as (() => void) | null;
  let ended = false;
  void (async () => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of proc.stdout) {
      buf += dec.decode(chunk, { stream: true });
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          events.push(JSON.parse(line));
        } catch {
          // not an event (app output)
        }
      }
      wake?.();
    }
    ended = true;
    wake?.();
  })();
  const next = async (...kinds: string[]): Promise<PoolEvent> => {
    const deadline = performance.now() + deadlineMs;
    for (;;) {
      while (cursor < events.length) {
        const e = events[cursor++]!;
        if (kinds.includes(e.event)) return e;
      }
      if (ended) throw new Error(`supervisor exited (code ${proc.exitCode}, signal ${proc.signalCode}) before ${kinds.join("/")}; events: ${events.map((e) => e.event).join(", ")}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no ${kinds.join("/")} event within ${deadlineMs} ms; events: ${events.map((e) => e.event).join(", ")}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        wake = () => {
          clearTimeout(t);
          wake = null;
          r();
        };
      });
    }
  };
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), 20_000);
    await proc.exited;
    clearTimeout(t);
  };
  return { proc, events, next, stop };
}
