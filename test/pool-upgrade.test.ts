/**
 * Supervisor self-upgrade under load, started the way systemd starts a Type=notify service with
 * socket activation: the listening socket comes in as fd 3 (LISTEN_FDS), and $NOTIFY_SOCKET is a
 * datagram socket of this test. SIGUSR2 makes the supervisor hand its listening socket to a fresh
 * copy of itself (the handoff); the new supervisor starts its own workers, stores the socket in the
 * fd store, sends MAINPID=<its pid> and READY=1; the old one drains its workers and exits 0.
 * A non-retrying client must lose nothing.
 */
import { test, expect, afterAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UnixDatagram } from "../src/index.ts";
import { openTcpListener } from "../src/pool/listen.ts";
import * as sys from "../src/sys.ts";
import { httpLoad, formatLoad } from "./helpers/http-load.ts";
import { startSupervisor, alive } from "./helpers/pool-supervisor.ts";

const qemu = !!process.env.BUN_TEST_ABI && /arm64|aarch64/.test(process.env.BUN_TEST_ABI);
const dir = mkdtempSync(join(tmpdir(), "ua-pool-up-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Notice = { pid: number | null; fields: Record<string, string>; fds: number };

test("supervisor self-upgrade under load (socket activation, Type=notify): 0 lost, old supervisor and its workers exit", async () => {
  const notifyPath = join(dir, "notify.sock");
  const notify = UnixDatagram.bindSync(notifyPath);
  sys.setNonblocking(notify.fd, true);
  const notices: Notice[] = [];
  const reader = setInterval(() => {
    for (;;) {
      let got;
      try {
        got = notify.recvFdsSync(16);
      } catch {
        return; // EAGAIN
      }
      const fields = Object.fromEntries(new TextDecoder().decode(got.data).split("\n").filter(Boolean).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
      notices.push({ pid: null, fields, fds: got.fds.length });
      for (const f of got.fds) f.close();
    }
  }, 10);
  const listener = openTcpListener("127.0.0.1", 0);
  const port = (sys.getsockname(listener.fd) as { port: number }).port;
  const sup = await startSupervisor({ WORKERS: "3", WINDOW_MS: "200", NOTIFY_SOCKET: notifyPath }, qemu ? 300_000 : 45_000, listener.fd);
  listener.close(); // the supervisor has its own copy
  let successorPid = 0;
  try {
    const first = await sup.next("started");
    expect(first.port).toBe(port); // it took the activated socket instead of opening one
    const oldWorkers = first.pids as number[];
    const load = httpLoad({ port, keepalive: qemu ? 3 : 8, fresh: qemu ? 1 : 4, pauseMs: 2, requestTimeoutMs: qemu ? 30_000 : 10_000 });
    await Bun.sleep(300);
    sup.proc.kill("SIGUSR2");
    // the old side reports upgrade-done at the commit, the successor "started" once its ready() returned: either order
    const a = await sup.next("started", "upgrade-done");
    const b = await sup.next(a.event === "started" ? "upgrade-done" : "started");
    const [second, done] = a.event === "started" ? [a, b] : [b, a];
    successorPid = second.pid;
    expect(successorPid).not.toBe(first.pid);
    expect(done.pid).toBe(first.pid);
    expect(done.successor).toBe(successorPid);
    expect(await sup.proc.exited).toBe(0); // the old supervisor exits after draining its workers
    await Bun.sleep(300);
    const report = await load.stop();
    console.log(`pool self-upgrade: ${formatLoad(report)}; served by ${Object.keys(report.byTag).length} worker pids`);
    expect(report.lost).toBe(0);
    for (const pid of oldWorkers) expect(alive(pid)).toBe(false);
    for (const pid of second.pids as number[]) expect(report.byTag[String(pid)] ?? 0).toBeGreaterThan(0);
    // systemd protocol: both generations stored the socket and announced themselves ready
    await Bun.sleep(50);
    const ready = notices.filter((n) => n.fields.READY === "1");
    expect(ready.map((n) => Number(n.fields.MAINPID))).toEqual([first.pid, successorPid]);
    const stores = notices.filter((n) => n.fields.FDSTORE === "1");
    expect(stores.length).toBe(2);
    expect(stores.every((n) => n.fds === 1 && n.fields.FDNAME === "http")).toBe(true);
  } catch (e) {
    console.log(sup.events.map((x) => JSON.stringify(x)).join("\n"), JSON.stringify(notices));
    throw e;
  } finally {
    clearInterval(reader);
    if (successorPid && alive(successorPid)) {
      process.kill(successorPid, "SIGTERM");
      for (let i = 0; i < 400 && alive(successorPid); i++) await Bun.sleep(50);
    }
    await sup.stop();
    notify.close();
  }
}, qemu ? 600_000 : 60_000);
