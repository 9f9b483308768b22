/**
 * Pool crash handling under a non-retrying HTTP/1.1 load:
 *  - SIGKILL of one worker: it is restarted; the only loss is the requests in flight on it at the
 *    kill (at most one per client connection), nothing before or after.
 *  - crash loop of one slot: a clear ERR_UA_CRASH_LOOP event, the slot is given up, the healthy
 *    workers keep serving with no loss; the next reload brings the slot back.
 *  - a rollout whose new worker fails before ready(): aborted, the old workers keep serving, 0 lost.
 *  - the supervisor dies: its workers drain and exit (no orphan keeps the port).
 */
import { test, expect, afterAll } from "bun:test";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { httpLoad, diffLoad, formatLoad } from "./helpers/http-load.ts";
import { startSupervisor, alive } from "./helpers/pool-supervisor.ts";
import { poolControl, type PoolStatus } from "../src/pool/index.ts";

const qemu = !!process.env.BUN_TEST_ABI && /arm64|aarch64/.test(process.env.BUN_TEST_ABI);
const KEEPALIVE = qemu ? 3 : 6;
const FRESH = qemu ? 1 : 3;
const dir = mkdtempSync(join(tmpdir(), "ua-pool-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function status(control: string): Promise<PoolStatus> {
  return (await poolControl(control, "status")).status as PoolStatus;
}

test("SIGKILL of one worker under load: restarted, loss limited to its in-flight requests", async () => {
  const control = join(dir, "kill.sock");
  const sup = await startSupervisor({ WORKERS: "4", CONTROL: control, BACKOFF_MS: "50" });
  try {
    const { port } = await sup.next("started");
    const load = httpLoad({ port: port as number, keepalive: KEEPALIVE, fresh: FRESH, pauseMs: 2, requestTimeoutMs: qemu ? 30_000 : 10_000 });
    await Bun.sleep(500);
    const victim = (await status(control)).workers.find((w) => w.slot === 1)!;
    const before = load.snapshot();
    process.kill(victim.pid, "SIGKILL");
    const exit = await sup.next("worker-exit");
    expect(exit).toMatchObject({ workerPid: victim.pid, signal: "SIGKILL", expected: false });
    const crash = await sup.next("worker-crash");
    expect(crash.slot).toBe(1);
    const ready = await sup.next("worker-ready");
    expect(ready.slot).toBe(1);
    await Bun.sleep(300);
    const mid = load.snapshot();
    await Bun.sleep(qemu ? 3000 : 1000);
    const end = await load.stop();
    const atKill = diffLoad(before, mid);
    const afterwards = diffLoad(mid, end);
    console.log(`pool SIGKILL: before ${formatLoad(before)}; kill window ${formatLoad(atKill)}; after restart ${formatLoad(afterwards)}`);
    expect(before.lost).toBe(0);
    // at most one request in flight per client connection on the killed worker
    expect(atKill.lost).toBeLessThanOrEqual(KEEPALIVE + FRESH);
    expect(atKill.counts.refused).toBe(0);
    expect(afterwards.lost).toBe(0);
    expect(afterwards.byTag[String(ready.workerPid)] ?? 0).toBeGreaterThan(0);
    const s = await status(control);
    expect(s.workers.length).toBe(4);
    expect(s.workers.find((w) => w.slot === 1)!.restarts).toBe(1);
  } finally {
    await sup.stop();
  }
}, qemu ? 300_000 : 60_000);

test("crash loop of one slot: ERR_UA_CRASH_LOOP, the healthy workers keep serving, a reload restores the slot", async () => {
  const control = join(dir, "loop.sock");
  const crashFile = join(dir, "crash");
  const sup = await startSupervisor({ WORKERS: "3", CONTROL: control, BACKOFF_MS: "20", CRASH_MAX: "3", CRASH_FILE: crashFile });
  try {
    const { port } = await sup.next("started");
    const load = httpLoad({ port: port as number, keepalive: KEEPALIVE, fresh: FRESH, pauseMs: 2, requestTimeoutMs: qemu ? 30_000 : 10_000 });
    const slot0 = (await status(control)).workers.find((w) => w.slot === 0)!;
    writeFileSync(crashFile, "");
    process.kill(slot0.pid, "SIGKILL");
    const loop = await sup.next("crash-loop");
    expect(loop.code).toBe("ERR_UA_CRASH_LOOP");
    expect(loop.slot).toBe(0);
    expect(String(loop.message)).toContain("slot 0 crashed 4 times");
    const mid = load.snapshot();
    await Bun.sleep(qemu ? 3000 : 1000);
    const s = await status(control);
    expect(s.failedSlots).toEqual([0]);
    expect(s.workers.map((w) => w.slot).sort()).toEqual([1, 2]);
    const window = diffLoad(mid, load.snapshot());
    expect(window.lost).toBe(0);
    expect(Object.keys(window.byTag).sort()).toEqual(s.workers.map((w) => String(w.pid)).sort());
    // the restarts died before ready(): they never accepted, so the loop itself lost nothing
    rmSync(crashFile);
    sup.proc.kill("SIGHUP");
    const done = await sup.next("reload-done", "reload-failed");
    expect(done.event).toBe("reload-done");
    const report = await load.stop();
    console.log(`pool crash loop: ${formatLoad(report)}`);
    const after = await status(control);
    expect(after.workers.length).toBe(3);
    expect(after.failedSlots).toEqual([]);
    expect(report.lost).toBeLessThanOrEqual(KEEPALIVE + FRESH); // only the SIGKILL's in-flight requests
  } finally {
    await sup.stop();
  }
}, qemu ? 300_000 : 60_000);

test("a rollout whose new worker fails before ready() is aborted; the old workers keep serving", async () => {
  const failFile = join(dir, "fail");
  const sup = await startSupervisor({ WORKERS: "2", FAIL_FILE: failFile });
  try {
    const started = await sup.next("started");
    const load = httpLoad({ port: started.port as number, keepalive: KEEPALIVE, fresh: FRESH, pauseMs: 2, requestTimeoutMs: qemu ? 30_000 : 10_000 });
    writeFileSync(failFile, "");
    sup.proc.kill("SIGHUP");
    const ev = await sup.next("reload-done", "reload-failed");
    expect(ev.event).toBe("reload-failed");
    expect(ev.code).toBe("ERR_UA_WORKER_FAILED");
    expect(String(ev.message)).toContain("exited before ready");
    expect((ev.pids as number[]).sort()).toEqual((started.pids as number[]).sort());
    expect(ev.fds).toBe(started.fds);
    await Bun.sleep(300);
    const report = await load.stop();
    expect(report.lost).toBe(0);
    expect(Object.keys(report.byTag).sort()).toEqual((started.pids as number[]).map(String).sort());
  } finally {
    await sup.stop();
  }
}, qemu ? 300_000 : 60_000);

test("workers of a supervisor that died (SIGKILL) drain and exit instead of keeping the port", async () => {
  const sup = await startSupervisor({ WORKERS: "2", WINDOW_MS: "100" });
  try {
    const started = await sup.next("started");
    const workers = started.pids as number[];
    const res = await fetch(`http://127.0.0.1:${started.port}/`, { headers: { connection: "close" } });
    expect(workers).toContain(Number(res.headers.get("x-server")));
    sup.proc.kill("SIGKILL");
    await sup.proc.exited;
    const deadline = performance.now() + (qemu ? 120_000 : 30_000);
    while (workers.some(alive) && performance.now() < deadline) await Bun.sleep(50);
    expect(workers.filter(alive)).toEqual([]);
  } finally {
    await sup.stop();
  }
}, qemu ? 300_000 : 60_000);
