/**
 * fd passing between real processes: the test spawns child Bun processes (test/fixtures/child-receiver.ts)
 * with one end of a UnixStream pair as their fd 3 (Bun.spawn stdio slot 3) and sends them a pipe write
 * end, a read-only file, a listening TCP socket, or an inheritable pipe (to check CLOEXEC on arrival).
 * Every test also checks that the parent's fd count returns to its baseline.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import { UnixStream } from "../src/index.ts";
import { fdSnapshot, newFdsSince, type FdSnapshot } from "./helpers/fds.ts";
import { closeRaw, getFdFlags, FD_CLOEXEC, pipe } from "./fixtures/child-libc.ts";

const CHILD = join(import.meta.dir, "fixtures", "child-receiver.ts");
const text = (b: Uint8Array) => new TextDecoder().decode(b);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ua-xproc-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Spawns the child with `childEnd` as its fd 3, then closes the parent's copy of it. */
function spawnChild(mode: string, arg: string, childEnd: UnixStream) {
  const proc = Bun.spawn([process.execPath, CHILD, mode, arg], {
    stdio: ["ignore", "pipe", "pipe", childEnd.fd],
  });
  // After this the child holds the only copy: if it dies, our blocking receives see EOF instead of hanging.
  childEnd.close();
  return proc;
}

async function finish(proc: ReturnType<typeof spawnChild>): Promise<Record<string, unknown>> {
  const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  expect({ code, signal: proc.signalCode, err }).toEqual({ code: 0, signal: null, err: "" });
  return JSON.parse(out.trim()) as Record<string, unknown>;
}

/**
 * The open fds before a test, taken once earlier files' asynchronous cleanup has settled: Bun closes a
 * finished child's stdio pipes later, and the leak net closes fds that earlier tests dropped on
 * purpose when the GC finds them. Either could otherwise close a baseline fd mid-test.
 */
async function settledBaseline(): Promise<FdSnapshot> {
  Bun.gc(true);
  await Bun.sleep(20);
  Bun.gc(true);
  return fdSnapshot();
}

/** The fd set settles back to `baseline`: nothing new is open and nothing of the baseline was closed. */
async function expectFdCountBack(baseline: FdSnapshot): Promise<void> {
  // Only fds created since the baseline count: Bun may close a finished child's pipes at any time.
  for (let i = 0; i < 50 && newFdsSince(baseline).length > 0; i++) await Bun.sleep(10);
  expect(newFdsSince(baseline)).toEqual([]);
}

describe("cross-process fd passing (child Bun processes)", () => {
  test("a pipe write end: the child writes through it, the parent reads the pipe", async () => {
    const baseline = await settledBaseline();
    const [parentEnd, childEnd] = UnixStream.pair();
    const [r, w] = pipe();
    const proc = spawnChild("pipe-writer", "hello through the pipe", childEnd);
    try {
      expect(parentEnd.sendFdsSync("pipe", [w])).toBe(4);
      closeRaw(w); // the child now holds the only write end: EOF once it is done
      const buf = new Uint8Array(256);
      let got = "";
      for (;;) {
        const n = readSync(r, buf);
        if (n === 0) break;
        got += text(buf.subarray(0, n));
      }
      expect(got).toBe(`hello through the pipe from child ${proc.pid}`);
      const report = await finish(proc);
      expect(report).toMatchObject({ mode: "pipe-writer", data: "pipe", wrote: got.length });
    } finally {
      proc.kill();
      closeRaw(r);
      parentEnd.close();
    }
    await expectFdCountBack(baseline);
  });

  test("a read-only file: the child reads it, and its write fails with EBADF", async () => {
    const baseline = await settledBaseline();
    const path = join(dir, "capability.txt");
    writeFileSync(path, "read-only capability contents");
    const [parentEnd, childEnd] = UnixStream.pair();
    const fd = openSync(path, "r");
    const proc = spawnChild("read-only", "", childEnd);
    try {
      parentEnd.sendFdsAllSync("file", [fd]);
      const report = await finish(proc);
      expect(report).toMatchObject({ mode: "read-only", data: "file", contents: "read-only capability contents", writeError: "EBADF" });
    } finally {
      proc.kill();
      closeSync(fd);
      parentEnd.close();
    }
    await expectFdCountBack(baseline);
  });

  test("a listening TCP socket: the child serves it with Bun.listen({ fd }) and greets the parent's client", async () => {
    const baseline = await settledBaseline();
    const [parentEnd, childEnd] = UnixStream.pair();
    // The parent's own listener: Bun.listen exposes its fd as an undocumented `.fd` property (docs/design.md, "Adopting sockets in Bun servers").
    const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = listener.port;
    const listenFd = (listener as unknown as { fd: number }).fd;
    expect(typeof listenFd).toBe("number");
    const proc = spawnChild("tcp-server", "greeting", childEnd);
    try {
      parentEnd.sendFdsSync("listener", [listenFd]);
      listener.stop(true); // closes the parent's copy; the child's copy keeps the socket listening
      const ready = parentEnd.recvFdsSync(0);
      expect(text(ready.data)).toBe("ready");

      const greeting = await new Promise<string>((resolve, reject) => {
        let s = "";
        const c = net.connect(port, "127.0.0.1");
        c.setEncoding("utf8");
        c.on("data", (d) => (s += d));
        c.on("end", () => {
          c.destroy();
          resolve(s);
        });
        c.on("error", reject);
      });
      expect(greeting).toBe(`greeting from child ${proc.pid}\n`);
      const report = await finish(proc);
      expect(report).toMatchObject({ mode: "tcp-server", data: "listener", served: 1 });
      const done = parentEnd.recvFdsSync(0);
      expect(text(done.data)).toBe("done");
    } finally {
      proc.kill();
      listener.stop(true);
      parentEnd.close();
    }
    await expectFdCountBack(baseline);
  });

  test("received fds are FD_CLOEXEC in the child even when the sender's copy is inheritable", async () => {
    const baseline = await settledBaseline();
    const [parentEnd, childEnd] = UnixStream.pair();
    const [r, w] = pipe(0); // no O_CLOEXEC: the sender's copies are inheritable
    const proc = spawnChild("cloexec", "", childEnd);
    try {
      expect(getFdFlags(r) & FD_CLOEXEC).toBe(0);
      parentEnd.sendFdsSync("c", [r]);
      const report = await finish(proc);
      expect(report).toMatchObject({ mode: "cloexec", data: "c", cloexecByFcntl: true, cloexecByFdinfo: true });
      expect(report.fd).toBeGreaterThan(3);
    } finally {
      proc.kill();
      closeRaw(r);
      closeRaw(w);
      parentEnd.close();
    }
    await expectFdCountBack(baseline);
  });

  test("a child that exits without receiving: the parent sees EOF, not a hang, and nothing leaks", async () => {
    const baseline = await settledBaseline();
    const [parentEnd, childEnd] = UnixStream.pair();
    const proc = spawnChild("no-such-mode", "", childEnd);
    try {
      const code = await proc.exited;
      expect(code).toBe(2);
      // The peer is gone: recv sees EOF (0 bytes, no fds) rather than blocking.
      const eof = parentEnd.recvFdsSync(1);
      expect(eof.data.length).toBe(0);
      expect(eof.fds).toHaveLength(0);
      await new Response(proc.stdout).text();
      expect(await new Response(proc.stderr).text()).toContain("unknown mode no-such-mode");
    } finally {
      proc.kill();
      parentEnd.close();
    }
    await expectFdCountBack(baseline);
  });
});
