/**
 * Handoff under load, measured with the non-retrying HTTP/1.1 client (test/helpers/http-load.ts):
 * generations of examples/handoff-app.ts hand their listening socket to fresh child processes while
 * busy keep-alive connections (GET + POST) and new-connection workers run. Every request must end ok
 * (no refused, reset, EOF, timeout or bad status), every old process must exit, and no connection
 * opened after an old process stopped accepting may be served first by that process (pid in the
 * x-server header vs the stoppedAcceptingAt the old process reports).
 *
 * Scaled down under qemu-user (UA_EMULATED=1, set by scripts/run-abi.sh for the arm64 ABIs), where a
 * child Bun takes about a second to start.
 */
import { afterEach, describe, expect, test } from "bun:test";
import * as net from "node:net";
import { AppChain } from "../examples/handoff-harness.ts";
import { formatLoad, httpLoad, type HttpLoad } from "./helpers/http-load.ts";

const emulated = process.env.UA_EMULATED === "1";
const COUNT = Number(process.env.HANDOFF_TEST_COUNT ?? (emulated ? 2 : 50));
const chains: AppChain[] = [];
afterEach(async () => {
  for (const c of chains.splice(0)) await c.close();
});

function chain(env: Record<string, string> = {}): AppChain {
  const c = new AppChain({ DRAIN_MS: "3000", HANDOFF_TIMEOUT_MS: emulated ? "60000" : "10000", ...env }, !!process.env.HANDOFF_VERBOSE);
  chains.push(c);
  return c;
}

/** Connections first served by a process that had already stopped accepting when they were opened. */
function lateAccepts(load: HttpLoad, stoppedAt: Map<number, number>): string[] {
  const out: string[] = [];
  for (const c of load.connections) {
    const pid = Number(c.tag.split(":")[1]);
    const at = stoppedAt.get(pid);
    if (at !== undefined && c.connectAt > at) out.push(`pid ${pid} stopped accepting at ${at.toFixed(1)}, served a connection opened at ${c.connectAt.toFixed(1)}`);
  }
  return out;
}

async function runHandoffs(server: string, count: number, keepalive: number, fresh: number): Promise<void> {
  const c = chain({ SERVER: server });
  const first = await c.start();
  // Under qemu-user a quarter of the workers and a 30 s request limit: emulated servers are ~20x slower.
  const load = emulated
    ? httpLoad({ port: c.port, keepalive: Math.ceil(keepalive / 4), fresh: Math.ceil(fresh / 4), recordConnections: true, requestTimeoutMs: 30_000 })
    : httpLoad({ port: c.port, keepalive, fresh, recordConnections: true });
  const olds: number[] = [first.pid];
  const stoppedAt = new Map<number, number>();
  for (let i = 0; i < count; i++) {
    await Bun.sleep(emulated ? 300 : 60);
    const { ready, handedOff } = await c.handoff();
    expect(ready.kind).toBe(server);
    expect(ready.confirmed).toBe(true);
    expect(ready.port).toBe(c.port);
    stoppedAt.set(handedOff.pid, handedOff.stoppedAcceptingAt as number);
    olds.push(ready.pid);
  }
  await Bun.sleep(emulated ? 500 : 200);
  const r = await load.stop();
  if (r.lost !== 0) throw new Error(`${server}: ${formatLoad(r)}; samples ${JSON.stringify(r.samples)}`);
  expect(r.counts.ok).toBeGreaterThan(count);
  expect(Object.keys(r.byTag).length).toBeGreaterThan(1); // the traffic really moved
  expect(lateAccepts(load, stoppedAt)).toEqual([]);
  for (const pid of olds.slice(0, -1)) expect(await AppChain.waitExit(pid, 15_000)).toBe(true);
}

describe("handoff under load, non-retrying client", () => {
  test(`${COUNT} handoffs of a Bun.serve app, 16 busy keep-alive connections (GET+POST) + 8 new-connection workers: 0 lost, old pids exit, no accept after the commit`, async () => {
    await runHandoffs("bun-serve", COUNT, 16, 8);
  }, emulated ? 60_000 + COUNT * 30_000 : 180_000);

  test(`node:http app: ${Math.ceil(COUNT / 5)} handoffs, 8 keep-alive + 4 new-connection workers: 0 lost`, async () => {
    await runHandoffs("node-http", Math.ceil(COUNT / 5), 8, 4);
  }, emulated ? 60_000 + COUNT * 30_000 : 120_000);

  test(`net.Server (raw HTTP through the onConnection hook): ${Math.ceil(COUNT / 5)} handoffs, 8 keep-alive + 4 new-connection workers: 0 lost`, async () => {
    await runHandoffs("net", Math.ceil(COUNT / 5), 8, 4);
  }, emulated ? 60_000 + COUNT * 30_000 : 120_000);

  test("an idle keep-alive connection that sends 0-50 ms after the commit is answered", async () => {
    // A 5 s window (30 s under qemu-user) so that a loaded machine cannot push the sends past it (they aim at 0-50 ms).
    const c = chain(emulated ? { DRAIN_MS: "60000", WINDOW_MS: "30000" } : { DRAIN_MS: "10000", WINDOW_MS: "5000" });
    await c.start();
    const delays = [0, 2, 5, 10, 20, 35, 50];
    const conns: Array<{ sock: net.Socket; data: string; closed: boolean }> = [];
    for (let i = 0; i < delays.length; i++) {
      const sock = net.connect(c.port, "127.0.0.1");
      const e = { sock, data: "", closed: false };
      sock.on("data", (d) => (e.data += d));
      sock.on("close", () => (e.closed = true));
      sock.on("error", () => {});
      conns.push(e);
      await new Promise((r) => sock.once("connect", r));
      sock.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n"); // one request so the connection is a used, idle keep-alive one
    }
    const ready = performance.now() + 10_000;
    while (performance.now() < ready && !conns.every((e) => e.data.includes("hello"))) await Bun.sleep(10);
    for (const e of conns) expect(e.data).toContain("200 OK");
    process.kill(c.current, "SIGHUP");
    const handedOff = await c.next((e) => e.event === "handed-off"); // logged right after the commit
    const sinceCommit = performance.timeOrigin + performance.now() - (handedOff.stoppedAcceptingAt as number);
    const oldTag = `:${handedOff.pid}`;
    await Promise.all(
      conns.map(async (e, i) => {
        e.data = "";
        await Bun.sleep(Math.max(0, delays[i]! - sinceCommit));
        e.sock.write("POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc");
      }),
    );
    const end = performance.now() + (emulated ? 60_000 : 5000);
    while (performance.now() < end && !conns.every((e) => /\r\n\r\nhello/.test(e.data))) await Bun.sleep(10);
    const state = conns.map((e, i) => `#${i} (+${delays[i]} ms): ${e.closed ? "closed" : "open"}, ${e.data.length} bytes`);
    if (!conns.every((e) => /^HTTP\/1\.1 200 OK/.test(e.data))) throw new Error(`not every idle connection was answered: ${state.join("; ")}`);
    for (const e of conns) {
      expect(e.data).toMatch(/^HTTP\/1\.1 200 OK/);
      expect(e.data).toContain(oldTag); // answered by the old process, on the connection it owns
      expect(e.data.toLowerCase()).toContain("connection: close"); // and told to reconnect
      e.sock.destroy();
    }
  }, emulated ? 300_000 : 60_000);
});
