/**
 * Multi-process handoff reliability (loopback only, bounded): generations of examples/handoff-app.ts
 * (Bun.serve) hand their listening socket to fresh child processes under continuous load from this
 * process — fresh-connection and keep-alive clients at once. Requirements checked: 0 failed requests
 * (no refused, no reset, no timeout), every successor serves with Bun.serve itself (no fallback),
 * every old generation exits, fd counts of the generations are stable.
 *
 * Count: HANDOFF_TEST_COUNT (default 100, ~15 s on a 2-vCPU VM; 2 under qemu, UA_EMULATED=1, where
 * a child Bun takes ~0.7 s to start). `bun bench/handoff.ts` runs the same with latency and
 * throughput numbers.
 *
 * Faults: kill -9 of the successor at each protocol step (before hello, after hello, after the
 * offer, after adopting), an abort, and a hang past the timeout: the old generation keeps serving,
 * reports the failure, its fd count returns to the same value, and a final handoff succeeds.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AppChain, APP } from "../examples/handoff-harness.ts";
import { runLoad, type LoadReport } from "./helpers/fetch-load.ts";

const emulated = process.env.UA_EMULATED === "1";
const COUNT = Number(process.env.HANDOFF_TEST_COUNT ?? (emulated ? 2 : 100));
const chains: AppChain[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const c of chains.splice(0)) await c.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function chain(env: Record<string, string> = {}): AppChain {
  const c = new AppChain({ DRAIN_MS: "1500", ...env }, !!process.env.HANDOFF_VERBOSE);
  chains.push(c);
  return c;
}

function expectClean(r: LoadReport, label: string): void {
  if (r.failed !== 0) throw new Error(`${label}: ${r.failed} failed requests: ${JSON.stringify(r.errors)}`);
  expect(r.ok).toBeGreaterThan(0);
}

describe("handoff under load (child processes)", () => {
  test(`${COUNT} consecutive handoffs, fresh-connection + keep-alive clients: 0 failed, Bun.serve each time, fds stable`, async () => {
    const c = chain();
    const first = await c.start();
    const url = `http://127.0.0.1:${c.port}/`;
    const fresh = runLoad({ url, concurrency: 4, mode: "fresh", tagHeader: "x-server" });
    const keep = runLoad({ url, concurrency: 4, mode: "keepalive", tagHeader: "x-server" });
    const fds: number[] = [];
    const olds: number[] = [first.pid];
    for (let i = 0; i < COUNT; i++) {
      await Bun.sleep(emulated ? 300 : 60);
      const { ready, handedOff } = await c.handoff();
      expect(ready.kind).toBe("bun-serve");
      expect(ready.fallback).toBe(false);
      expect(ready.confirmed).toBe(true);
      expect(ready.port).toBe(c.port);
      expect(handedOff.successor).toBe(ready.pid);
      fds.push(ready.fds as number);
      olds.push(ready.pid);
    }
    await Bun.sleep(emulated ? 500 : 200);
    const f = await fresh.stop();
    const k = await keep.stop();
    expectClean(f, "fresh-connection clients");
    expectClean(k, "keep-alive clients");
    // Every generation served some requests, i.e. the traffic really moved.
    expect(Object.keys(f.byServer).length + Object.keys(k.byServer).length).toBeGreaterThan(1);
    expect(new Set(fds).size).toBe(1);
    for (const pid of olds.slice(0, -1)) expect(await AppChain.waitExit(pid, 10_000)).toBe(true);
  }, emulated ? 30_000 + COUNT * 20_000 : 150_000);

  test("control-socket path mode (HAProxy/Pingora style): a separately started process takes over", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ua-ho-path-"));
    dirs.push(dir);
    chmodSync(dir, 0o700);
    const ctl = join(dir, "ctl.sock");
    const c = chain({ CTRL_PATH: ctl });
    await c.start();
    const load = runLoad({ url: `http://127.0.0.1:${c.port}/`, concurrency: 4, mode: "fresh" });
    await Bun.sleep(100);
    const next = Bun.spawn([process.execPath, APP], { env: { ...process.env, GEN: "1", REQUEST_PATH: ctl, CTRL_PATH: ctl }, stdout: "pipe", stderr: "inherit" });
    c.pids.add(next.pid);
    const out = next.stdout.getReader();
    let text = "";
    while (!text.includes('"ready"')) {
      const { value, done } = await out.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    const ready = JSON.parse(text.split("\n").find((l) => l.includes('"ready"'))!);
    expect(ready.kind).toBe("bun-serve");
    const handed = await c.next((e) => e.event === "handed-off");
    expect(handed.successor).toBe(next.pid);
    await Bun.sleep(150);
    expectClean(await load.stop(), "path mode");
    expect(await AppChain.waitExit(handed.pid)).toBe(true);
    next.kill("SIGKILL");
  }, 30_000);
});

describe("faults: the old generation keeps serving", () => {
  test("kill -9 of the successor at each protocol step, abort, hang past the timeout; then a good handoff", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ua-ho-fault-"));
    dirs.push(dir);
    const faultFile = join(dir, "fault");
    writeFileSync(faultFile, "");
    const c = chain({ FAULT_FILE: faultFile, HANDOFF_TIMEOUT_MS: emulated ? "8000" : "1500" });
    const first = await c.start();
    const url = `http://127.0.0.1:${c.port}/`;
    const load = runLoad({ url, concurrency: 4, mode: "fresh", tagHeader: "x-server" });
    const keep = runLoad({ url, concurrency: 2, mode: "keepalive", tagHeader: "x-server" });
    const faults = ["kill-before-hello", "kill-after-hello", "kill-after-offer", "abort", "hang", "kill-after-adopt"];
    const fdsAfter: number[] = [];
    const windows: Record<string, { ok: number; failed: number; errors: Record<string, number> }> = {};
    const both = () => {
      const a = load.snapshot(), b = keep.snapshot();
      return { ok: a.ok + b.ok, failed: a.failed + b.failed, errors: { ...a.errors, ...b.errors } };
    };
    for (const fault of faults) {
      writeFileSync(faultFile, fault);
      const before = both();
      process.kill(first.pid, "SIGHUP");
      const e = await c.next((e) => e.pid === first.pid && (e.event === "spawn-failed" || e.event === "handed-off"), 20_000);
      expect(e.event).toBe("spawn-failed");
      fdsAfter.push(e.fds as number);
      await Bun.sleep(50);
      const now = both();
      windows[fault] = { ok: now.ok - before.ok, failed: now.failed - before.failed, errors: now.errors };
    }
    writeFileSync(faultFile, "");
    const { ready } = await c.handoff();
    expect(ready.kind).toBe("bun-serve");
    await Bun.sleep(100);
    const f = await load.stop();
    const k = await keep.stop();
    if (process.env.HANDOFF_VERBOSE) console.log(JSON.stringify({ windows, f, k }));
    // fd count of the survivor: identical after every failed attempt.
    expect(new Set(fdsAfter).size).toBe(1);
    for (const fault of faults) {
      expect(windows[fault]!.ok).toBeGreaterThan(0);
      // kill -9 after adopting, and a hang after adopting (the old side times out and spawn() kills the
      // successor): the successor was already accepting from the shared queue, so a connection it had
      // accepted and not answered yet is reset when it dies (rare: 0 natively; 1 seen once under qemu).
      if (fault === "kill-after-adopt" || fault === "hang") expect(windows[fault]!.failed).toBeLessThanOrEqual(3);
      else if (windows[fault]!.failed !== 0) throw new Error(`${fault}: ${windows[fault]!.failed} failed requests ${JSON.stringify(windows[fault])}`);
    }
    const adoptLoss = windows["kill-after-adopt"]!.failed + windows["hang"]!.failed;
    if (adoptLoss > 0) console.log(`note: killing a successor after it adopted cost ${adoptLoss} requests`);
    expect(f.failed + k.failed).toBe(adoptLoss);
    expect(f.ok + k.ok).toBeGreaterThan(0);
  }, 120_000);
});
