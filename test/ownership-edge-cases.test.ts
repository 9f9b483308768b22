/**
 * Ownership edge cases: resizable and shared buffers under SocketAncillary, UnixListener.close(),
 * fds on the handoff's rejected paths, argument errors that must not leak.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cmsgRecvmsg, SocketAncillary } from "../src/ancillary.ts";
import { UnixListener, UnixSeqpacket, UnixStream } from "../src/socket.ts";
import { requestHandoff } from "../src/handoff/client.ts";
import { serveHandoff } from "../src/handoff/server.ts";
import { encodeFrame } from "../src/handoff/protocol.ts";
import { openFds, fdTarget } from "./helpers/fds.ts";
import { closeRaw, openRaw } from "./fixtures/libc.ts";

const OFFER = 2;
const READY = 3;

/** A file with a unique path, so /proc/self/fd tells whether any fd still refers to it. */
function markerFile(tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), `ua-edge-${tag}-`));
  const p = join(dir, "marker");
  writeFileSync(p, "x");
  return p;
}
function fdsOpenOn(path: string): number[] {
  return openFds().filter((fd) => fdTarget(fd) === path);
}

function newAncillaryOrRefusal(u: Uint8Array): SocketAncillary | null {
  try {
    return new SocketAncillary(u);
  } catch (e) {
    if (e instanceof TypeError) return null;
    throw e;
  }
}

// Under qemu-user (the arm64 CI runs) creating a resizable ArrayBuffer aborts Bun itself ("mprotect
// failed: Cannot allocate memory" while JSC reserves its pages), so these two run natively only.
const emulated = process.env.UA_EMULATED === "1";

describe.skipIf(emulated)("SocketAncillary over a resizable ArrayBuffer (skipped under qemu-user: JSC cannot reserve resizable buffers there)", () => {
  test("growing the buffer after construction cannot strand received fds (resizable buffers are refused, or every fd is owned)", () => {
    const rab = new ArrayBuffer(24, { maxByteLength: 4096 });
    const anc = newAncillaryOrRefusal(new Uint8Array(rab)); // length-tracking view; the DataView is fixed at 24
    if (anc === null) return; // refusing resizable buffers up front is an acceptable fix
    rab.resize(4096); // recvmsg now gets 4096 bytes of control space, the parser still sees 24
    const [a, b] = UnixStream.pair();
    try {
      const marker = markerFile("grow");
      const src = openRaw(marker);
      a.sendFdsSync("x", Array(10).fill(src));
      closeRaw(src);
      const r = cmsgRecvmsg(b, [new Uint8Array(8)], anc);
      for (const m of anc.messages()) if (m.type === "rights") for (const fd of m.fds) fd.close();
      anc.clear();
      // Every fd the kernel delivered must have been yielded (and closed above) or closed by the library.
      expect({ truncated: r.truncated, stillOpen: fdsOpenOn(marker).length }).toEqual({ truncated: r.truncated, stillOpen: 0 });
    } finally {
      a.close();
      b.close();
    }
  });

  test("shrinking the buffer after construction cannot leak received fds", () => {
    const rab = new ArrayBuffer(256, { maxByteLength: 4096 });
    const anc = newAncillaryOrRefusal(new Uint8Array(rab));
    if (anc === null) return;
    rab.resize(64);
    const [a, b] = UnixStream.pair();
    try {
      const marker = markerFile("shrink");
      const src = openRaw(marker);
      a.sendFdsSync("x", [src, src]);
      closeRaw(src);
      try {
        cmsgRecvmsg(b, [new Uint8Array(8)], anc); // before the fix: TypeError (DataView out of bounds) after recvmsg
        for (const m of anc.messages()) if (m.type === "rights") for (const fd of m.fds) fd.close();
      } catch {}
      try {
        anc.clear();
      } catch {}
      // Whatever the outcome (success or a clean error), no received fd may remain open without an owner.
      expect(fdsOpenOn(marker)).toEqual([]);
    } finally {
      a.close();
      b.close();
    }
  });
});

describe("UnixListener.close()", () => {
  test("does not unlink a socket file that another listener now owns at the same path", () => {
    const dir = mkdtempSync(join(tmpdir(), "ua-edge-unlink-"));
    const p = join(dir, "s.sock");
    try {
      const first = UnixListener.bindSync(p);
      unlinkSync(p); // e.g. a successor/second instance removed the stale file and bound its own
      using _second = UnixListener.bindSync(p);
      first.close();
      expect(existsSync(p)).toBe(true);
      const c = UnixStream.connectSync(p); // the second listener must still be reachable
      c.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("handoff: fds on rejected paths", () => {
  test("requestHandoff({ fd: number }) on a non-seqpacket fd throws without adopting it (no orphan OwnedFd for GC to close later)", async () => {
    const [a, b] = UnixStream.pair();
    const n = b.intoFd().release(); // a raw fd number: a stream socket, not a seqpacket
    await expect(requestHandoff({ fd: n, timeoutMs: 100 })).rejects.toThrow(/not a (seqpacket|SOCK_SEQPACKET)/i);
    closeRaw(n); // the call failed, so the caller still owns (and now closes) its number (EBADF if the library already did)
    const marker = markerFile("gc");
    const reused = openRaw(marker);
    try {
      expect(reused).toBe(n);
      for (let i = 0; i < 10; i++) {
        Bun.gc(true);
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(fdTarget(reused)).toBe(marker); // the library's leak net must not close an fd it never owned
    } finally {
      closeRaw(reused);
      a.close();
    }
  });

  test("requestHandoff reads its fd option once: a getter cannot pass the checks with one number and be adopted with another", async () => {
    const [a, b] = UnixStream.pair(); // a stream socket: the checks refuse it
    const [c, d] = UnixSeqpacket.pair(); // what a getter could swap in after the checks
    let reads = 0;
    const opts = {
      timeoutMs: 100,
      get fd() {
        reads++;
        return reads === 1 ? b.fd : d.fd;
      },
    };
    await expect(requestHandoff(opts)).rejects.toThrow(/not a (seqpacket|SOCK_SEQPACKET)/i);
    expect(reads).toBe(1);
    expect(fdTarget(d.fd)).not.toBeNull(); // never adopted, never closed by the library
    for (const s of [a, b, c, d]) s.close();
  });

  test("old side: an offer frame with an fd instead of hello is rejected and its fd closed", async () => {
    const [srvEnd, peerEnd] = UnixSeqpacket.pair();
    const lsDir = mkdtempSync(join(tmpdir(), "ua-edge-ls-"));
    using l = UnixListener.bindSync(join(lsDir, "l.sock"));
    const ho = serveHandoff({ http: l.fd }, { socket: srvEnd, timeoutMs: 2000 });
    const attempt = ho.nextAttempt();
    const marker = markerFile("srv");
    const src = openRaw(marker);
    const frame = encodeFrame(OFFER, { pid: process.pid, listeners: [{ name: "x", family: "unix", address: "/x", port: 0, type: "stream" }] }, 1);
    peerEnd.sendFdsSync(frame, [src]);
    closeRaw(src);
    const out = await attempt;
    expect(out.ok).toBe(false);
    ho.close();
    peerEnd.close();
    rmSync(lsDir, { recursive: true, force: true });
    expect(fdsOpenOn(marker)).toEqual([]);
  });

  test("new side: ready() rejects an offer frame with an fd instead of done, and closes the fd", async () => {
    const [clientEnd, oldEnd] = UnixSeqpacket.pair();
    const p = requestHandoff({ fd: clientEnd.intoFd(), timeoutMs: 2000 });
    using hello = oldEnd.recvFdsSync(0); // hello was sent synchronously
    expect(hello.data.byteLength).toBeGreaterThan(16);
    oldEnd.sendFdsSync(encodeFrame(OFFER, { pid: process.pid, listeners: [] }, 0), []);
    const ho = await p;
    const rp = ho.ready();
    using ready = oldEnd.recvFdsSync(0);
    expect(ready.data[5]).toBe(READY);
    const marker = markerFile("cli");
    const src = openRaw(marker);
    oldEnd.sendFdsSync(encodeFrame(OFFER, { pid: process.pid, listeners: [{ name: "x", family: "unix", address: "/x", port: 0, type: "stream" }] }, 1), [src]);
    closeRaw(src);
    await expect(rp).rejects.toThrow(/expected done|must not carry fds/);
    oldEnd.close();
    expect(fdsOpenOn(marker)).toEqual([]);
  });
});

describe("SocketAncillary over a SharedArrayBuffer", () => {
  test("another thread writing a shared control buffer can never make cmsgRecvmsg adopt a forged fd number", async () => {
    const victim = openRaw("/dev/null"); // an fd this test owns; nobody may create a second owner for it
    const sab = new SharedArrayBuffer(64 + 4); // 64 bytes of control space + a stop flag for the writer
    let anc: SocketAncillary;
    try {
      anc = new SocketAncillary(new Uint8Array(sab, 0, 64));
    } catch (e) {
      closeRaw(victim);
      if (e instanceof TypeError) return; // refusing shared memory up front is an acceptable fix
      throw e;
    }
    // offset 16 = first fd slot of the SCM_RIGHTS message the kernel writes at offset 0 (x86_64/aarch64 Linux)
    const w = new Worker(new URL("./fixtures/sab-writer.ts", import.meta.url).href, { workerData: { sab, index: 4, value: victim } } as WorkerOptions);
    await new Promise((r) => w.addEventListener("message", r, { once: true }));
    const [a, b] = UnixStream.pair();
    const marker = markerFile("sab");
    const src = openRaw(marker);
    let forged = 0;
    let i = 0;
    try {
      for (; i < 100_000 && forged === 0; i++) {
        a.sendFdsSync("x", [src]);
        cmsgRecvmsg(b, [new Uint8Array(1)], anc);
        for (const m of anc.messages()) {
          if (m.type !== "rights") continue;
          for (const fd of m.fds) {
            if (fd.fd === victim) {
              forged++;
              fd.release(); // do not let the forged owner close the victim
            } else fd.close();
          }
        }
      }
    } finally {
      Atomics.store(new Int32Array(sab), 16, 1);
      w.terminate();
      closeRaw(src);
      a.close();
      b.close();
    }
    const leaked = fdsOpenOn(marker).length;
    closeRaw(victim);
    expect({ forged, leaked }).toEqual({ forged: 0, leaked: 0 });
  }, 30_000);
});

describe("argument errors", () => {
  test("UnixStream.connectSync(non-string) throws a TypeError with code ERR_INVALID_ARG_TYPE like every other bad argument", () => {
    let err: any;
    try {
      UnixStream.connectSync(123 as any);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TypeError);
    expect(err.code).toBe("ERR_INVALID_ARG_TYPE");
  });
});
