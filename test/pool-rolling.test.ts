/**
 * Pool rolling restarts under a non-retrying HTTP/1.1 load: 4 workers on one shared listening
 * socket, 20 SIGHUP rollouts while keep-alive and new-connection clients run. Nothing may be lost
 * (no refused, reset, EOF, timeout or bad status), every retired worker must exit, and the
 * supervisor's fd count (reported by the supervisor process itself) must not grow.
 */
import { test, expect } from "bun:test";
import { httpLoad, formatLoad, diffLoad } from "./helpers/http-load.ts";
import { startSupervisor, alive } from "./helpers/pool-supervisor.ts";

const qemu = !!process.env.BUN_TEST_ABI && /arm64|aarch64/.test(process.env.BUN_TEST_ABI);
const ROLLOUTS = qemu ? 4 : 20;

test(`${ROLLOUTS} rolling restarts of 4 workers under keep-alive + new-connection load lose nothing`, async () => {
  const sup = await startSupervisor({ WORKERS: "4", WINDOW_MS: "150", PARALLELISM: "2" });
  try {
    const started = await sup.next("started");
    const port = started.port as number;
    const load = httpLoad({ port, keepalive: qemu ? 4 : 8, fresh: qemu ? 2 : 4, pauseMs: 2, requestTimeoutMs: qemu ? 30_000 : 10_000 });
    await Bun.sleep(200);
    const fds: number[] = [];
    const seen = new Set<number>(started.pids as number[]);
    for (let i = 0; i < ROLLOUTS; i++) {
      sup.proc.kill("SIGHUP");
      const ev = await sup.next("reload-done", "reload-failed");
      if (ev.event !== "reload-done") throw new Error(`rollout ${i + 1} failed: ${JSON.stringify(ev)}`);
      fds.push(ev.fds as number);
      for (const p of ev.pids as number[]) seen.add(p);
    }
    await Bun.sleep(200);
    const report = await load.stop();
    console.log(`pool rolling: ${formatLoad(report)} across ${Object.keys(report.byTag).length} worker pids; supervisor fds per rollout: ${fds.join(",")}`);
    expect(report.lost).toBe(0);
    expect(report.counts.ok).toBeGreaterThan(ROLLOUTS * 10);
    // every worker that was retired is gone; exactly the last generation is alive
    const final = new Set(sup.events.findLast((e) => e.event === "reload-done")!.pids as number[]);
    expect(final.size).toBe(4);
    for (const pid of seen) expect(alive(pid)).toBe(final.has(pid));
    const exits = sup.events.filter((e) => e.event === "worker-exit");
    expect(exits.length).toBe(ROLLOUTS * 4);
    expect(exits.every((e) => e.expected === true)).toBe(true);
    // supervisor fds: stable across rollouts
    expect(new Set(fds).size).toBe(1);
    expect(fds[0]).toBe(started.fds as number);
  } finally {
    await sup.stop();
  }
}, qemu ? 600_000 : 240_000);

test('balance "reuseport": rolling restarts lose nothing and new connections reach every worker', async () => {
  const sup = await startSupervisor({ WORKERS: "2", WINDOW_MS: "150", BALANCE: "reuseport" });
  try {
    const started = await sup.next("started");
    const load = httpLoad({ port: started.port as number, keepalive: qemu ? 2 : 4, fresh: qemu ? 2 : 4, pauseMs: 2, requestTimeoutMs: qemu ? 30_000 : 10_000 });
    let last = started;
    for (let i = 0; i < (qemu ? 2 : 5); i++) {
      sup.proc.kill("SIGHUP");
      last = await sup.next("reload-done", "reload-failed");
      if (last.event !== "reload-done") throw new Error(`rollout ${i + 1} failed: ${JSON.stringify(last)}`);
    }
    const before = load.snapshot();
    await Bun.sleep(qemu ? 5000 : 1500);
    const report = await load.stop();
    const window = diffLoad(before, report);
    console.log(`pool reuseport rolling: ${formatLoad(report)}; last window by pid: ${JSON.stringify(window.byTag)}`);
    expect(report.lost).toBe(0);
    expect(last.fds).toBe(started.fds);
    // the kernel hashes new connections over both slots' sockets: each worker gets a real share
    const pids = last.pids as number[];
    expect(pids.length).toBe(2);
    for (const pid of pids) expect(window.byTag[String(pid)] ?? 0).toBeGreaterThan(window.counts.ok / 10);
  } finally {
    await sup.stop();
  }
}, qemu ? 600_000 : 60_000);
