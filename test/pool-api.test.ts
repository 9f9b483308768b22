/**
 * Pool API: the 20-line example end to end (serve, SIGHUP reload, SIGTERM drain + exit 0), one
 * rollout at a time (ERR_UA_BUSY), option validation, the status CLI over the control socket.
 */
import { test, expect, afterAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startPool, PoolError } from "../src/pool/index.ts";
import { openTcpListener, openListeners } from "../src/pool/listen.ts";
import { UnixAncillaryError } from "../src/errors.ts";
import { getsockname } from "../src/sys.ts";

const qemu = !!process.env.BUN_TEST_ABI && /arm64|aarch64/.test(process.env.BUN_TEST_ABI);
const ROOT = join(import.meta.dir, "..");
const APP = join(ROOT, "examples", "pool-app.ts");
const dir = mkdtempSync(join(tmpdir(), "ua-pool-api-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function lineMatching(stream: ReadableStream<Uint8Array>, re: RegExp): Promise<{ match: RegExpExecArray }> {
  const reader = stream.getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended before ${re}; got: ${buf}`);
    buf += new TextDecoder().decode(value);
    const m = re.exec(buf);
    if (m) {
      reader.releaseLock();
      return { match: m };
    }
  }
}

test("examples/pool-hello.ts: 4 workers answer, SIGHUP replaces them, SIGTERM drains and exits 0", async () => {
  const proc = Bun.spawn([process.execPath, join(ROOT, "examples", "pool-hello.ts")], { env: { ...process.env, PORT: "0", READY_TIMEOUT_MS: qemu ? "300000" : "30000" }, stdio: ["ignore", "pipe", "inherit"] });
  try {
    const { match } = await lineMatching(proc.stdout, /supervisor (\d+) serving on :(\d+), workers ([\d ]+)\n/);
    const port = Number(match[2]);
    const workers = match[3]!.trim().split(" ").map(Number);
    expect(workers.length).toBe(4);
    const res = await fetch(`http://127.0.0.1:${port}/`);
    const who = Number(/hello from worker (\d+)/.exec(await res.text())?.[1]);
    expect(workers).toContain(who);
    proc.kill("SIGHUP");
    // after the rollout, no old worker is left
    const deadline = performance.now() + (qemu ? 300_000 : 45_000);
    const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
    while (workers.some(alive) && performance.now() < deadline) await Bun.sleep(50);
    expect(workers.filter(alive)).toEqual([]);
    const again = await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: "close" } });
    expect(workers).not.toContain(Number(/hello from worker (\d+)/.exec(await again.text())?.[1]));
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
  } finally {
    proc.kill("SIGKILL");
  }
}, qemu ? 400_000 : 60_000);

test("one rollout at a time (ERR_UA_BUSY), status over the control socket and the CLI", async () => {
  const controlPath = join(dir, "api.sock");
  const pool = await startPool({ script: APP, workers: 1, listen: [{ port: 0 }], controlPath, drain: { windowMs: 50 }, stderr: "inherit", env: { COUNT: "1" }, readyTimeoutMs: qemu ? 300_000 : 30_000 });
  try {
    const first = pool.reload();
    await expect(pool.reload()).rejects.toMatchObject({ code: "ERR_UA_BUSY" });
    await expect(pool.upgrade()).rejects.toMatchObject({ code: "ERR_UA_BUSY" });
    expect((await first).replaced).toBe(1);
    // per-worker counts: 3 new connections with 1 request each
    const port = pool.sockets[0]!.info.port;
    for (let i = 0; i < 3; i++) await (await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: "close" }, keepalive: false })).text();
    const [w] = (await pool.statusAsync()).workers;
    expect({ accepted: w!.accepted, requests: w!.requests, state: w!.state, generation: w!.generation }).toEqual({ accepted: 3, requests: 3, state: "ready", generation: 2 });
    const cli = Bun.spawn([process.execPath, join(ROOT, "src", "pool", "cli.ts"), "status", controlPath], { stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(cli.stdout).text(), new Response(cli.stderr).text(), cli.exited]);
    expect({ code, err }).toEqual({ code: 0, err: "" });
    expect(out).toContain(`supervisor ${process.pid}, generation 2`);
    expect(out).toMatch(new RegExp(`^0\\s+2\\s+${pool.pids()[0]}\\s+2\\s+ready\\s+0\\s+3\\s+3\\s+`, "m"));
  } finally {
    await pool.close();
  }
  expect(pool.pids()).toEqual([]);
  await expect(pool.reload()).rejects.toMatchObject({ code: "ERR_UA_CLOSED" });
}, qemu ? 300_000 : 30_000);

test("option validation: listeners, worker count, script", async () => {
  expect(() => openListeners([])).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARG_VALUE" }));
  for (const bad of ["example.com", ":::1", "1::2::3", "12345::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1.2.3.256"]) {
    expect(() => openTcpListener(bad, 0)).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARG_VALUE", message: expect.stringContaining("numeric IPv4 or IPv6") }));
  }
  expect(() => openTcpListener("127.0.0.1", 70000)).toThrow(/port must be an integer/);
  await expect(startPool({ script: APP, workers: 0, listen: [{ port: 0 }] })).rejects.toMatchObject({ code: "ERR_OUT_OF_RANGE" });
  await expect(startPool({ listen: [{ port: 0 }] } as never)).rejects.toThrow(/script/);
  // a worker that never becomes ready: start fails with a clear error, nothing is left running
  const failed = startPool({ script: APP, workers: 1, listen: [{ port: 0 }], env: { FAIL: "exit" }, stderr: "ignore" });
  await expect(failed).rejects.toThrow(PoolError);
  await expect(failed).rejects.toMatchObject({ name: "PoolError", code: "ERR_UA_WORKER_FAILED", kind: "Other" });
  await expect(failed.catch((e) => e instanceof UnixAncillaryError)).resolves.toBe(true);
});

test("IPv6 listeners: numeric addresses in every text form bind as AF_INET6, and a pool serves on ::1", async () => {
  for (const [host, address] of [["::1", "::1"], ["[::1]", "::1"], ["0:0:0:0:0:0:0:1", "::1"], ["::", "::"], ["::ffff:127.0.0.1", "::ffff:7f00:1"]] as const) {
    using fd = openTcpListener(host, 0);
    expect(getsockname(fd.fd)).toMatchObject({ family: "ipv6", address });
  }
  const pool = await startPool({ script: APP, workers: 1, listen: [{ host: "::1", port: 0 }], stderr: "inherit", readyTimeoutMs: qemu ? 300_000 : 30_000 });
  try {
    const res = await fetch(`http://[::1]:${pool.sockets[0]!.info.port}/`, { headers: { connection: "close" } });
    expect(await res.text()).toBe(`hello from ${pool.pids()[0]}\n`);
  } finally {
    await pool.close();
  }
}, qemu ? 300_000 : 30_000);

test("balance \"reuseport\" refuses what it cannot do with ERR_UA_UNSUPPORTED", async () => {
  const pool = await startPool({ script: APP, workers: 1, balance: "reuseport", listen: [{ port: 0 }], stderr: "inherit", readyTimeoutMs: qemu ? 300_000 : 30_000 });
  try {
    await expect(pool.upgrade()).rejects.toMatchObject({ name: "PoolError", code: "ERR_UA_UNSUPPORTED", kind: "Unsupported", message: expect.stringContaining('use "shared"') });
  } finally {
    await pool.close();
  }
}, qemu ? 300_000 : 30_000);

test("every retired worker's worker-drained event arrives before its worker-exit (reload and close), with its final counts", async () => {
  const pool = await startPool({ script: APP, workers: 2, listen: [{ port: 0 }], drain: { windowMs: 20 }, stderr: "inherit", env: { COUNT: "1" }, readyTimeoutMs: qemu ? 300_000 : 30_000 });
  const events: string[] = [];
  const drainedRequests = new Map<number, number>();
  pool.on("worker-drained", (i: { pid: number; requests: number; reports: unknown }) => {
    expect(Array.isArray(i.reports)).toBe(true);
    drainedRequests.set(i.pid, i.requests);
    events.push(`drained ${i.pid}`);
  });
  pool.on("worker-exit", (i: { pid: number }) => events.push(`exit ${i.pid}`));
  const first = pool.pids();
  let second: number[] = [];
  try {
    const port = pool.sockets[0]!.info.port;
    for (let i = 0; i < 4; i++) await (await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: "close" }, keepalive: false })).text();
    await pool.reload();
    second = pool.pids();
  } finally {
    await pool.close();
  }
  for (const pid of [...first, ...second]) {
    // each retired worker reports its drain before the supervisor handles its exit (the report was
    // sent right before exiting and must not be overtaken by the exit)
    expect(events.filter((e) => e.endsWith(` ${pid}`))).toEqual([`drained ${pid}`, `exit ${pid}`]);
  }
  // the 4 requests were served by the first generation (the reload's own probes may add to it)
  expect(first.reduce((n, pid) => n + (drainedRequests.get(pid) ?? 0), 0)).toBeGreaterThanOrEqual(4);
}, qemu ? 300_000 : 60_000);
