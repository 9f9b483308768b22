/**
 * A successor that dies costs nothing: SIGKILL of the successor at each step (right after spawn,
 * after receiving the fds, after adopting, 300 ms after adopting under load, just before ready()),
 * an abort and a hang past the deadline — for Bun.serve, node:http and net.Server apps. Under load
 * from the non-retrying client (keep-alive GET+POST and new connections): 0 requests lost, the old
 * process keeps serving, its fd count (as it reports it, client connections excluded) is the same
 * after every failed attempt, and a final handoff succeeds.
 *
 * No request is lost even when the successor dies after adopting: it never accepts before the
 * commit (protocol v2: ready -> done -> serving), so nothing sits in its accept queue.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AppChain, APP } from "../examples/handoff-harness.ts";
import { diffLoad, formatLoad, httpLoad } from "./helpers/http-load.ts";

const emulated = process.env.UA_EMULATED === "1";
const chains: AppChain[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const c of chains.splice(0)) await c.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

// Under qemu-user (UA_EMULATED=1) a child Bun takes ~10 s to start: the steps where the successor
// holds the adopted socket, and the Bun.serve app only.
const FAULTS = emulated
  ? ["kill-after-offer", "kill-after-adopt-300", "kill-before-ready"]
  : ["kill-before-hello", "kill-after-hello", "kill-after-offer", "kill-after-adopt", "kill-after-adopt-300", "kill-before-ready", "abort", "hang"];

describe.each(emulated ? ["bun-serve"] : ["bun-serve", "node-http", "net"])("faults, %s app: the old process keeps serving", (server) => {
  test("SIGKILL of the successor at each step, abort, hang past the deadline: 0 lost, fd count unchanged, the next handoff works", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ua-ho-fault-"));
    dirs.push(dir);
    const faultFile = join(dir, "fault");
    writeFileSync(faultFile, "");
    const c = new AppChain({ SERVER: server, FAULT_FILE: faultFile, DRAIN_MS: "3000", HANDOFF_TIMEOUT_MS: emulated ? "60000" : "5000" }, !!process.env.HANDOFF_VERBOSE);
    chains.push(c);
    const first = await c.start();
    const load = emulated ? httpLoad({ port: c.port, keepalive: 2, fresh: 1, requestTimeoutMs: 30_000 }) : httpLoad({ port: c.port, keepalive: 8, fresh: 4 });
    await Bun.sleep(100);
    const fds: number[] = [first.fds as number];
    const windows: Record<string, string> = {};
    for (const fault of FAULTS) {
      writeFileSync(faultFile, fault);
      const before = load.snapshot();
      process.kill(first.pid, "SIGHUP");
      const e = await c.next((e) => e.pid === first.pid && (e.event === "spawn-failed" || e.event === "handed-off"), emulated ? 120_000 : 30_000);
      expect(e.event).toBe("spawn-failed");
      fds.push(e.fds as number);
      await Bun.sleep(100);
      const w = diffLoad(before, load.snapshot());
      windows[fault] = formatLoad(w);
      expect(w.counts.ok).toBeGreaterThan(0); // the old process kept serving through the attempt
      expect(Object.keys(w.byTag)).toEqual([`0:${first.pid}`]);
    }
    writeFileSync(faultFile, "");
    const { ready } = await c.handoff();
    expect(ready.kind).toBe(server);
    await Bun.sleep(200);
    const r = await load.stop();
    if (process.env.HANDOFF_VERBOSE) console.log(server, JSON.stringify(windows));
    if (r.lost !== 0) throw new Error(`${server}: ${formatLoad(r)}; per fault ${JSON.stringify(windows)}; samples ${JSON.stringify(r.samples)}`);
    expect(new Set(fds).size).toBe(1);
    expect(r.byTag[`1:${ready.pid}`]).toBeGreaterThan(0);
  }, emulated ? 600_000 : 180_000);
});

describe("control-socket path mode", () => {
  test("a separately started process takes over through the path (HAProxy/Pingora style): 0 lost", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ua-ho-path-"));
    dirs.push(dir);
    chmodSync(dir, 0o700);
    const ctl = join(dir, "ctl.sock");
    const c = new AppChain({ CTRL_PATH: ctl, DRAIN_MS: "3000" });
    chains.push(c);
    await c.start();
    const load = httpLoad({ port: c.port, keepalive: 4, fresh: 4 });
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
    await Bun.sleep(200);
    const r = await load.stop();
    if (r.lost !== 0) throw new Error(formatLoad(r));
    expect(await AppChain.waitExit(handed.pid)).toBe(true);
    next.kill("SIGKILL");
  }, emulated ? 300_000 : 30_000);
});
