/**
 * The readiness reactor (src/async/reactor.ts + reactor-worker.ts + backend-epoll.ts), and the struct
 * encoding of the kqueue backend against the darwin/freebsd tables (it cannot run on this host).
 * No latency is asserted; the measured numbers are in the engineer's report, not here.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getEventListeners } from "node:events";
import { UnixStream } from "../src/socket.ts";
import { UnixAncillaryError, SystemError } from "../src/errors.ts";
import { abi, K } from "../src/platform/index.ts";
import * as sys from "../src/sys.ts";
import { forget, reactorStats, shutdownReactor, waitFor } from "../src/async/reactor.ts";
import { decodeEpollEvent, encodeEpollEvent, epollEventsFor, maskForEpollEvents } from "../src/async/backend-epoll.ts";
import { FAILED, READABLE, WRITABLE } from "../src/async/backend.ts";
import { decodeKevent, encodeKevent, maskForKevent } from "../src/async/backend-kqueue.ts";
import type { Abi } from "../src/platform/abi.ts";
import { abi as linuxX64Gnu } from "../src/platform/linux-x64-gnu.ts";
import { abi as linuxX64Musl } from "../src/platform/linux-x64-musl.ts";
import { abi as linuxArm64Gnu } from "../src/platform/linux-arm64-gnu.ts";
import { abi as linuxArm64Musl } from "../src/platform/linux-arm64-musl.ts";
import { abi as darwinX64 } from "../src/platform/darwin-x64.ts";
import { abi as darwinArm64 } from "../src/platform/darwin-arm64.ts";
import { abi as freebsdX64 } from "../src/platform/freebsd-x64.ts";
import { fdTarget } from "./helpers/fds.ts";

const SRC_REACTOR = join(import.meta.dir, "..", "src", "async", "reactor.ts");
const SRC_SOCKET = join(import.meta.dir, "..", "src", "socket.ts");

/** "pending" if `p` has not settled within `ms` (a generous negative check, never a latency bound). */
async function stateAfter(p: Promise<unknown>, ms = 50): Promise<"resolved" | "rejected" | "pending"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([
    p.then(
      () => "resolved" as const,
      () => "rejected" as const,
    ),
    new Promise<"pending">((res) => (timer = setTimeout(() => res("pending"), ms))),
  ]);
  clearTimeout(timer);
  return r;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection");
}

/** Fills a's send path (a non-blocking) until sendmsg reports EAGAIN; returns the bytes queued. */
function fill(a: UnixStream): number {
  sys.setNonblocking(a.fd, true);
  const chunk = new Uint8Array(65536);
  let total = 0;
  for (;;) {
    try {
      total += a.sendFdsSync(chunk);
    } catch (e) {
      if (e instanceof SystemError && e.code === "EAGAIN") return total;
      throw e;
    }
  }
}

function drain(b: UnixStream, bytes: number): void {
  let got = 0;
  while (got < bytes) got += b.recvFdsSync(0, { bufferSize: 65536 }).data.byteLength;
}

afterAll(async () => {
  await shutdownReactor();
});

describe("readiness", () => {
  test("readable after the peer writes; the fds are then received on the main thread", async () => {
    const [a, b] = UnixStream.pair();
    const [p0, p1] = sys.pipe();
    try {
      const ready = waitFor(b.fd, "readable");
      expect(reactorStats()).toMatchObject({ started: true, pending: 1, workerRefed: true });
      expect(await stateAfter(ready)).toBe("pending");
      a.sendFdsSync("hello", [p1]);
      await ready;
      expect(reactorStats()).toMatchObject({ pending: 0, workerRefed: false });
      using got = b.recvFdsSync(4);
      expect(new TextDecoder().decode(got.data)).toBe("hello");
      expect(got.fds.length).toBe(1);
    } finally {
      sys.closeFd(p0);
      sys.closeFd(p1);
      a.close();
      b.close();
    }
    expect(reactorStats().registered).toBe(0);
  });

  test("the same registration is re-armed for the next wait", async () => {
    const [a, b] = UnixStream.pair();
    try {
      for (let i = 0; i < 50; i++) {
        const ready = waitFor(b.fd, "readable");
        a.sendFdsSync(new Uint8Array([i]));
        await ready;
        expect(b.recvFdsSync(0).data[0]).toBe(i);
      }
      expect(reactorStats().registered).toBe(1);
    } finally {
      a.close();
      b.close();
    }
  });

  test("writable: immediately on an empty socket, and after the peer drains a full one", async () => {
    const [a, b] = UnixStream.pair();
    try {
      await waitFor(a.fd, "writable");
      const queued = fill(a);
      const w = waitFor(a.fd, "writable");
      expect(await stateAfter(w)).toBe("pending");
      drain(b, queued);
      await w;
    } finally {
      a.close();
      b.close();
    }
  });

  test("readable and writable on the same fd share one registration and both work", async () => {
    const [a, b] = UnixStream.pair();
    try {
      const queued = fill(a);
      const r = waitFor(a.fd, "readable");
      const w = waitFor(a.fd, "writable");
      expect(reactorStats()).toMatchObject({ registered: 1, pending: 2 });
      expect(await stateAfter(w)).toBe("pending");
      drain(b, queued);
      await w;
      // the read interest is still armed after the write report
      expect(await stateAfter(r)).toBe("pending");
      b.sendFdsSync("x");
      await r;
      expect(reactorStats().pending).toBe(0);
    } finally {
      a.close();
      b.close();
    }
  });

  test("several waiters on one fd and interest are all served, in FIFO order", async () => {
    const [a, b] = UnixStream.pair();
    try {
      const order: number[] = [];
      const all = [1, 2, 3, 4, 5].map((n) => waitFor(b.fd, "readable").then(() => order.push(n)));
      expect(reactorStats().pending).toBe(5);
      a.sendFdsSync("x");
      await Promise.all(all);
      expect(order).toEqual([1, 2, 3, 4, 5]);
    } finally {
      a.close();
      b.close();
    }
  });

  test("a hang-up wakes readers and writers; the syscall then reports what happened", async () => {
    const [a, b] = UnixStream.pair();
    try {
      const queued = fill(a);
      expect(queued).toBeGreaterThan(0);
      const r = waitFor(a.fd, "readable");
      const w = waitFor(a.fd, "writable");
      b.close();
      await Promise.all([r, w]);
      expect(() => a.sendFdsSync("x")).toThrow(SystemError); // EPIPE
      // b closed with a's bytes unread, so the kernel reset the connection
      expect(() => a.recvFdsSync(0)).toThrow(expect.objectContaining({ code: "ECONNRESET" }));
    } finally {
      a.close();
    }
  });

  test("1,000 socketpairs waited at once, then all made ready", async () => {
    const pairs = Array.from({ length: 1000 }, () => UnixStream.pair());
    try {
      const done = new Uint8Array(pairs.length);
      const waits = pairs.map(([, b], i) => waitFor(b.fd, "readable").then(() => (done[i] = 1)));
      expect(reactorStats()).toMatchObject({ pending: 1000 });
      expect(reactorStats().registered).toBeGreaterThanOrEqual(1000);
      expect(await stateAfter(Promise.race(waits), 20)).toBe("pending");
      for (const [a] of pairs) a.sendFdsSync("x");
      await Promise.all(waits);
      expect(done.every((d) => d === 1)).toBe(true);
      for (const [, b] of pairs) expect(b.recvFdsSync(0).data.byteLength).toBe(1);
    } finally {
      for (const [a, b] of pairs) {
        a.close();
        b.close();
      }
    }
    expect(reactorStats()).toMatchObject({ pending: 0, workerRefed: false });
  });
});

describe("abort, forget, errors", () => {
  test("an already-aborted signal rejects at once without registering", async () => {
    const [a, b] = UnixStream.pair();
    try {
      const before = reactorStats().registered;
      const reason = new Error("stop");
      const e = await rejection(waitFor(b.fd, "readable", AbortSignal.abort(reason)));
      expect(e).toBeInstanceOf(UnixAncillaryError);
      expect((e as UnixAncillaryError).code).toBe("ERR_UA_ABORTED");
      expect((e as UnixAncillaryError).cause).toBe(reason);
      expect(reactorStats()).toMatchObject({ registered: before, pending: 0 });
    } finally {
      a.close();
      b.close();
    }
  });

  test("abort while waiting removes only that waiter, then the registration", async () => {
    const [a, b] = UnixStream.pair();
    try {
      const ac1 = new AbortController();
      const ac2 = new AbortController();
      const w1 = waitFor(b.fd, "readable", ac1.signal);
      const w2 = waitFor(b.fd, "readable", ac2.signal);
      const registered = reactorStats().registered;
      ac1.abort("first");
      const e = await rejection(w1);
      expect((e as UnixAncillaryError).code).toBe("ERR_UA_ABORTED");
      expect((e as UnixAncillaryError).cause).toBe("first");
      expect(reactorStats()).toMatchObject({ pending: 1, registered });
      ac2.abort("second");
      expect(((await rejection(w2)) as UnixAncillaryError).cause).toBe("second");
      expect(reactorStats()).toMatchObject({ pending: 0, registered: registered - 1, workerRefed: false });
      // data arriving afterwards resolves nothing stale, and a new wait still works
      a.sendFdsSync("x");
      await waitFor(b.fd, "readable");
    } finally {
      a.close();
      b.close();
    }
  });

  test("abort listeners are removed when waits settle (no leak on a long-lived signal)", async () => {
    const [a, b] = UnixStream.pair();
    const ac = new AbortController();
    // The library adds and removes listeners through EventTarget's own methods (an override on the
    // signal is never called), so count what the signal really holds.
    const live = () => getEventListeners(ac.signal, "abort").length;
    try {
      for (let i = 0; i < 100; i++) {
        const w = waitFor(b.fd, "readable", ac.signal);
        expect(live()).toBe(1);
        a.sendFdsSync("x");
        await w;
        b.recvFdsSync(0);
        expect(live()).toBe(0);
      }
      const w = waitFor(b.fd, "readable", ac.signal);
      forget(b.fd);
      await rejection(w);
      expect(live()).toBe(0);
    } finally {
      a.close();
      b.close();
    }
  });

  test("forget(fd) rejects every waiter with ERR_UA_CLOSED and removes the registration", async () => {
    const [a, b] = UnixStream.pair();
    try {
      const r1 = waitFor(b.fd, "readable");
      const r2 = waitFor(b.fd, "readable");
      const w = waitFor(b.fd, "writable");
      await w; // writable at once
      const registered = reactorStats().registered;
      forget(b.fd);
      for (const p of [r1, r2]) {
        const e = await rejection(p);
        expect(e).toBeInstanceOf(UnixAncillaryError);
        expect((e as UnixAncillaryError).code).toBe("ERR_UA_CLOSED");
      }
      expect(reactorStats()).toMatchObject({ registered: registered - 1, pending: 0 });
      forget(b.fd); // idempotent
      forget(123456); // never registered
    } finally {
      a.close();
      b.close();
    }
  });

  test("closing a socket (which calls forget) rejects its pending wait", async () => {
    const [a, b] = UnixStream.pair();
    const r = waitFor(b.fd, "readable");
    b.close();
    expect(((await rejection(r)) as UnixAncillaryError).code).toBe("ERR_UA_CLOSED");
    a.close();
  });

  test("a reused fd number is not confused with its old registration", async () => {
    const [a, b] = UnixStream.pair();
    const oldFd = b.fd;
    const stale = waitFor(oldFd, "readable");
    a.sendFdsSync("x"); // old registration becomes ready...
    b.close(); // ...but is forgotten before its report is handled
    await rejection(stale);
    const [c, d] = UnixStream.pair();
    try {
      const reused = [c, d].find((s) => s.fd === oldFd) === d ? d : c;
      const peer = reused === d ? c : d;
      const w = waitFor(reused.fd, "readable");
      expect(await stateAfter(w)).toBe("pending");
      peer.sendFdsSync("y");
      await w;
    } finally {
      a.close();
      c.close();
      d.close();
    }
  });

  test("an fd that cannot be watched rejects with the SystemError", async () => {
    const [p0, p1] = sys.pipe();
    sys.closeFd(p0);
    sys.closeFd(p1);
    const e = await rejection(waitFor(p0, "readable"));
    expect(e).toBeInstanceOf(SystemError);
    expect((e as SystemError).code).toBe("EBADF");
    expect(reactorStats().pending).toBe(0);
    await expect(waitFor(-1, "readable")).rejects.toThrow(RangeError);
    await expect(waitFor(0, "nope" as never)).rejects.toThrow(TypeError);
  });
});

describe("lifecycle", () => {
  test("shutdownReactor rejects pending waits and stops the Worker; the thread keeps its poll fds and a later wait restarts on them", async () => {
    const [a, b] = UnixStream.pair();
    try {
      await waitFor(a.fd, "writable"); // make sure it is running
      const owned = reactorStats().ownedFds;
      expect(owned.length).toBe(abi.os === "linux" ? 2 : 1);
      expect(fdTarget(owned[0]!)).toBe("anon_inode:[eventpoll]");
      await shutdownReactor();
      expect(reactorStats().started).toBe(false);
      // The poll fds belong to the thread, not to one Worker: still open, and reused by the next start.
      for (const fd of owned) expect(fdTarget(fd)).not.toBeNull();
      const rejected = rejection(waitFor(b.fd, "readable"));
      expect(reactorStats()).toMatchObject({ started: true, pending: 1, workerRefed: true, ownedFds: owned });
      await shutdownReactor();
      expect(((await rejected) as UnixAncillaryError).code).toBe("ERR_UA_CLOSED");
      expect(reactorStats()).toMatchObject({ started: false, pending: 0, registered: 0, ownedFds: owned });
      // The stopping wake-up was consumed: the restarted Worker waits instead of stopping at once.
      const again = waitFor(b.fd, "readable");
      await Bun.sleep(20);
      expect(reactorStats()).toMatchObject({ started: true, pending: 1 });
      a.sendFdsSync("x");
      await again;
    } finally {
      a.close();
      b.close();
    }
  });


  test("idle CPU with one pending wait stays near zero", async () => {
    const [a, b] = UnixStream.pair();
    try {
      const w = waitFor(b.fd, "readable");
      await Bun.sleep(50); // let the worker settle into epoll_wait
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await Bun.sleep(1000);
      const used = process.cpuUsage(c0);
      const share = (used.user + used.system) / ((performance.now() - t0) * 1000);
      // A spinning reactor costs a whole core (share ≈ 1); process.cpuUsage also counts Bun's own GC and
      // JIT threads, which after a long test run can add several percent: only a spin must fail this.
      expect(share).toBeLessThan(0.5);
      a.sendFdsSync("x");
      await w;
    } finally {
      a.close();
      b.close();
    }
  });

  describe("child processes", () => {
    const dir = mkdtempSync(join(tmpdir(), "ua-reactor-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    function script(name: string, body: string): string {
      const path = join(dir, name);
      writeFileSync(path, `import { UnixStream } from ${JSON.stringify(SRC_SOCKET)};\nimport { waitFor, reactorStats } from ${JSON.stringify(SRC_REACTOR)};\n${body}\n`);
      return path;
    }

    // 2 s natively; under qemu-user (run-abi.sh linux-arm64-* on an x86_64 host) Bun's own startup
    // takes about that long, so the budget there only has to tell "exits" from "hangs".
    const emulated = (process.env.BUN_TEST_ABI ?? "").includes("arm64"); // run-abi.sh: arm64 = emulated here
    const exitBudget = emulated ? 15000 : 2000;

    test("a script whose one wait completes then returns exits by itself (within 2 s)", async () => {
      const path = script(
        "completes.ts",
        `const [a, b] = UnixStream.pair();
const w = waitFor(b.fd, "readable");
setTimeout(() => a.sendFdsSync("x"), 20);
await w;
console.log(b.recvFdsSync(0).data.byteLength, reactorStats().started, reactorStats().workerRefed);`,
      );
      const proc = Bun.spawn([process.execPath, path], { stdout: "pipe", stderr: "pipe" });
      const t0 = performance.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const outcome = await Promise.race([proc.exited, new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), exitBudget)))]);
      clearTimeout(timer);
      if (outcome === "timeout") proc.kill(K.SIGKILL);
      expect({ outcome, stderr: outcome === "timeout" ? "" : await new Response(proc.stderr).text() }).toEqual({ outcome: 0, stderr: "" });
      expect((await new Response(proc.stdout).text()).trim()).toBe("1 true false");
      expect(performance.now() - t0).toBeLessThan(exitBudget);
    });

    test("a script with a pending wait that is never satisfied stays alive until killed", async () => {
      const path = script(
        "pending.ts",
        // Keep the pair reachable: an unreachable socket is closed by the leak net, which (rightly) rejects its waits.
        `const [a, b] = UnixStream.pair();
(globalThis as any).keep = [a, b];
waitFor(b.fd, "readable").then(() => console.log("unexpected"));
console.log("waiting");`,
      );
      const proc = Bun.spawn([process.execPath, path], { stdout: "pipe", stderr: "pipe" });
      const reader = proc.stdout.getReader();
      const first = await reader.read();
      expect(new TextDecoder().decode(first.value)).toContain("waiting");
      await Bun.sleep(500);
      expect(proc.exitCode).toBeNull();
      expect(proc.killed).toBe(false);
      proc.kill(K.SIGTERM);
      await proc.exited;
      expect(proc.signalCode).toBe("SIGTERM");
      reader.releaseLock();
    });
  });
});

describe("struct encoding", () => {
  const linux: readonly Abi[] = [linuxX64Gnu, linuxX64Musl, linuxArm64Gnu, linuxArm64Musl];

  test.each(linux.map((a) => [a.name, a] as const))("epoll_event on %s: events and 64-bit token at the table's offsets", (_name, a) => {
    const l = a.epollEvent!;
    expect(l.size).toBe(a.arch === "x64" ? 12 : 16);
    expect(l.data.offset).toBe(a.arch === "x64" ? 4 : 8);
    const buf = new Uint8Array(l.size * 2);
    const view = new DataView(buf.buffer);
    const token = 0x1234_5678_9abc; // needs the high half
    encodeEpollEvent(l, view, l.size, 0x4000_2001, token);
    expect(buf.subarray(0, l.size).every((x) => x === 0)).toBe(true);
    expect(view.getUint32(l.size + l.events.offset, true)).toBe(0x4000_2001);
    expect(view.getBigUint64(l.size + l.data.offset, true)).toBe(BigInt(token));
    expect(decodeEpollEvent(l, view, l.size)).toEqual({ events: 0x4000_2001, token });
  });

  test("epoll interest and readiness masks", () => {
    expect(epollEventsFor(READABLE)).toBe(K.EPOLLONESHOT | K.EPOLLIN | K.EPOLLRDHUP);
    expect(epollEventsFor(WRITABLE)).toBe(K.EPOLLONESHOT | K.EPOLLOUT);
    expect(epollEventsFor(READABLE | WRITABLE)).toBe(K.EPOLLONESHOT | K.EPOLLIN | K.EPOLLRDHUP | K.EPOLLOUT);
    expect(maskForEpollEvents(K.EPOLLIN)).toBe(READABLE);
    expect(maskForEpollEvents(K.EPOLLRDHUP)).toBe(READABLE);
    expect(maskForEpollEvents(K.EPOLLOUT)).toBe(WRITABLE);
    expect(maskForEpollEvents(K.EPOLLHUP)).toBe(READABLE | WRITABLE | FAILED);
    expect(maskForEpollEvents(K.EPOLLERR)).toBe(READABLE | WRITABLE | FAILED);
  });

  // The real darwin/freebsd tables (src/platform/darwin-x64.ts, darwin-arm64.ts, freebsd-x64.ts).
  const bsd: readonly Abi[] = [darwinX64, darwinArm64, freebsdX64];

  test.each(bsd.map((a) => [a.name, a] as const))("struct kevent on %s", (_name, a) => {
    const l = a.kevent!;
    const k = a.constants;
    expect(l.size).toBe(a.os === "freebsd" ? 64 : 32);
    expect([l.ident.offset, l.filter.offset, l.flags.offset, l.fflags.offset, l.data.offset, l.udata.offset]).toEqual([0, 8, 10, 12, 16, 24]);
    const buf = new Uint8Array(l.size * 2).fill(0xee);
    const view = new DataView(buf.buffer);
    const ev = { ident: 1017, filter: k.EVFILT_WRITE, flags: k.EV_ADD | k.EV_ONESHOT, fflags: 0, data: 0, udata: 0x1_0000_0007 };
    encodeKevent(l, view, l.size, ev);
    expect(buf.subarray(0, l.size).every((x) => x === 0xee)).toBe(true); // first slot untouched
    const at = l.size;
    expect(view.getBigUint64(at + l.ident.offset, true)).toBe(1017n);
    expect(view.getInt16(at + l.filter.offset, true)).toBe(-2);
    expect(view.getUint16(at + l.flags.offset, true)).toBe(0x11);
    expect(view.getUint32(at + l.fflags.offset, true)).toBe(0);
    expect(view.getBigInt64(at + l.data.offset, true)).toBe(0n);
    expect(view.getBigUint64(at + l.udata.offset, true)).toBe(0x1_0000_0007n);
    if (l.size > 32) expect(buf.subarray(at + 32, at + l.size).every((x) => x === 0)).toBe(true); // FreeBSD ext[4] zeroed
    expect(decodeKevent(l, view, at)).toEqual(ev);

    // wake-up: EVFILT_USER with NOTE_TRIGGER in fflags
    encodeKevent(l, view, 0, { ident: 0, filter: k.EVFILT_USER, flags: 0, fflags: k.NOTE_TRIGGER, data: 0, udata: 0 });
    expect(view.getInt16(l.filter.offset, true)).toBe(a.os === "freebsd" ? -11 : -10);
    expect(view.getUint32(l.fflags.offset, true)).toBe(0x0100_0000);
  });

  test.each(bsd.map((a) => [a.name, a] as const))("kevent readiness masks on %s", (_name, a) => {
    const k = a.constants;
    const ev = (filter: number, flags = 0) => ({ ident: 3, filter, flags, fflags: 0, data: 0, udata: 9 });
    expect(maskForKevent(ev(k.EVFILT_READ), k)).toBe(READABLE);
    expect(maskForKevent(ev(k.EVFILT_READ, k.EV_EOF), k)).toBe(READABLE);
    expect(maskForKevent(ev(k.EVFILT_WRITE), k)).toBe(WRITABLE);
    expect(maskForKevent(ev(k.EVFILT_WRITE, k.EV_EOF), k)).toBe(WRITABLE | FAILED);
    expect(maskForKevent(ev(k.EVFILT_READ, k.EV_ERROR), k)).toBe(READABLE | WRITABLE | FAILED);
  });
});
