/**
 * Drives examples/handoff-app.ts generations from outside: starts generation 0, reads the JSON
 * events every generation prints on the shared stdout pipe, triggers handoffs (SIGHUP) and cleans
 * up every process it saw. Shared by the demo, the bench and the tests; run directly, it only says so.
 */
import type { Subprocess } from "bun";

export const APP = new URL("./handoff-app.ts", import.meta.url).pathname;

export interface AppEvent {
  event: string;
  gen: number;
  pid: number;
  [k: string]: unknown;
}

export class AppChain {
  readonly proc: Subprocess<"ignore", "pipe", "inherit">;
  readonly events: AppEvent[] = [];
  readonly pids = new Set<number>();
  #pending: AppEvent[] = [];
  #waiters: Array<() => void> = [];
  #closed = false;
  /** pid of the generation currently serving. */
  current = 0;
  port = 0;

  constructor(env: Record<string, string> = {}, readonly verbose = false) {
    this.proc = Bun.spawn([process.execPath, APP], { env: { ...process.env, ...env }, stdin: "ignore", stdout: "pipe", stderr: "inherit" });
    this.pids.add(this.proc.pid);
    void this.#read();
  }

  async #read(): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of this.proc.stdout) {
        buf += dec.decode(chunk, { stream: true });
        let i: number;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          let e: AppEvent;
          try {
            e = JSON.parse(line);
          } catch {
            if (this.verbose) console.log(`[app] ${line}`);
            continue;
          }
          if (this.verbose) console.log(`[app] ${line}`);
          this.pids.add(e.pid);
          this.events.push(e);
          this.#pending.push(e);
          for (const w of this.#waiters.splice(0)) w();
        }
      }
    } finally {
      this.#closed = true;
      for (const w of this.#waiters.splice(0)) w();
    }
  }

  /** Waits for the next event matching `pred` (consumed), or throws after `ms` (default 20 s; 120 s under qemu-user, where a child Bun takes ~10 s to start on a loaded machine). */
  async next(pred: (e: AppEvent) => boolean, ms = process.env.UA_EMULATED === "1" ? 120_000 : 20_000): Promise<AppEvent> {
    const end = performance.now() + ms;
    for (;;) {
      const i = this.#pending.findIndex(pred);
      if (i >= 0) return this.#pending.splice(i, 1)[0]!;
      const left = end - performance.now();
      if (left <= 0 || this.#closed) throw new Error(`no matching event within ${ms} ms; pending: ${JSON.stringify(this.#pending.slice(-5))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async start(): Promise<AppEvent> {
    const e = await this.next((e) => e.event === "listening");
    this.current = e.pid;
    this.port = e.port as number;
    return e;
  }

  /** SIGHUP the serving generation; resolves with the successor's ready event and the old one's handed-off event. */
  async handoff(): Promise<{ ready: AppEvent; handedOff: AppEvent; wallMs: number; sighupAt: number }> {
    const old = this.current;
    const t = performance.now();
    const sighupAt = performance.timeOrigin + t; // wall clock, comparable with the child's timeOrigin
    process.kill(old, "SIGHUP");
    const handedOff = await this.next((e) => e.pid === old && (e.event === "handed-off" || e.event === "spawn-failed"));
    if (handedOff.event !== "handed-off") throw new Error(`handoff failed: ${JSON.stringify(handedOff)}`);
    const ready = await this.next((e) => e.event === "ready" && e.pid === handedOff.successor);
    this.current = ready.pid;
    return { ready, handedOff, wallMs: performance.now() - t, sighupAt };
  }

  /** Waits until `pid` has exited (polling kill(pid, 0)). */
  static async waitExit(pid: number, ms = 10_000): Promise<boolean> {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      try {
        process.kill(pid, 0);
      } catch {
        return true;
      }
      await Bun.sleep(20);
    }
    return false;
  }

  /** SIGKILLs every process of the chain. */
  async close(): Promise<void> {
    for (const pid of this.pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    await this.proc.exited.catch(() => {});
  }
}

import { httpLoad } from "../test/helpers/http-load.ts";

/** Keep-alive GET throughput (ok req/s) of 127.0.0.1:`port` over `ms`, non-retrying client. */
export async function measureRps(port: number, ms: number, concurrency = 32): Promise<{ rps: number; lost: number }> {
  const r = await httpLoad({ port, keepalive: concurrency, methods: ["GET"], durationMs: ms }).done();
  return { rps: r.rps, lost: r.lost };
}

/**
 * Post-handoff vs fresh Bun.serve throughput, interleaved `rounds` times (A B, B A, A B ...) so drift
 * in the machine's load affects both alike. Returns the medians and the median of the per-pair ratios
 * (more robust than a ratio of medians on a shared, noisy machine).
 */
export async function compareThroughput(adoptedPort: number, freshPort: number, ms = 700, rounds = 9): Promise<{ adopted: number; fresh: number; ratio: number }> {
  const a: number[] = [], f: number[] = [], r: number[] = [];
  await measureRps(adoptedPort, 300); // warm both
  await measureRps(freshPort, 300);
  for (let i = 0; i < rounds; i++) {
    let x: number, y: number;
    if (i % 2 === 0) {
      x = (await measureRps(adoptedPort, ms)).rps;
      y = (await measureRps(freshPort, ms)).rps;
    } else {
      y = (await measureRps(freshPort, ms)).rps;
      x = (await measureRps(adoptedPort, ms)).rps;
    }
    a.push(x);
    f.push(y);
    r.push(x / Math.max(1, y));
  }
  const med = (x: number[]) => [...x].sort((p, q) => p - q)[Math.floor(x.length / 2)]!;
  return { adopted: med(a), fresh: med(f), ratio: med(r) };
}

if (import.meta.main) {
  console.log("handoff-harness.ts is a helper module (used by handoff-demo.ts, bench/handoff.ts and the tests).");
  console.log("Run the demo instead: bun examples/handoff-demo.ts");
}
