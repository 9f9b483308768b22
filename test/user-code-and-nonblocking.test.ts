/**
 * User code inside a send, and sockets the caller made non-blocking.
 *
 * - An `{ fd }` getter in the fd list is user code that runs during a send. The send path must resolve
 *   the fd list before it takes any payload address or reads the socket's number: a getter that moves a
 *   payload's storage (creating its ArrayBuffer, detaching it) or closes the socket must not make
 *   sendmsg read stale memory or reach whichever socket reuses the number.
 * - The sync API on a non-blocking socket throws EAGAIN; the internal would-block sentinels never reach
 *   a caller, sync or async.
 * - The leak net's pending stack and closeAll over arrays the library did not make.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { cmsgSendmsg, OwnedFd, SocketAncillary, SystemError, UnixDatagram, UnixSeqpacket, UnixStream } from "../src/index.ts";
import { abi } from "../src/platform/index.ts";
import { WOULD_BLOCK_FDS } from "../src/msg-io.ts";
import { adoptSlots, closeAll } from "../src/owned-fd.ts";
import { shutdownReactor } from "../src/async/reactor.ts";
import { fdTarget, expectNoFdLeak } from "./helpers/fds.ts";
import { closeRaw, dupRaw, isOpen, openRaw, pipeRaw, setNonblocking } from "./fixtures/libc.ts";

const MAX = abi.maxFdsPerSend; // 253 on glibc, 252 on musl
const enc = new TextEncoder();
const dec = new TextDecoder();
const text = (b: Uint8Array) => dec.decode(b);

afterAll(async () => {
  await shutdownReactor();
});

type Sock = UnixStream | UnixDatagram | UnixSeqpacket;

// qemu-user (the arm64 CI runs) answers a recvmsg whose msg_iovlen is 0 with 0 without calling the
// kernel: it neither reports EAGAIN nor consumes an empty datagram. The zero-buffer cases below are
// skipped there (named in the test titles); the kernel's own behaviour is tested natively.
const EMULATED = process.env.UA_EMULATED === "1";
const ZERO_IOV_NOTE = EMULATED ? " (zero-buffer cases skipped under qemu-user: it answers an empty iovec itself)" : "";

function catchErr(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

function expectEagain(f: () => unknown, syscall: string): void {
  let r: unknown;
  let err: unknown;
  try {
    r = f();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof SystemError)) throw new Error(`expected SystemError EAGAIN from ${syscall}, got ${err === undefined ? `a return value ${Bun.inspect(r)}` : String(err)}`);
  expect(err.code).toBe("EAGAIN");
  expect(err.syscall).toBe(syscall);
}

/** A pipe read end (its own inode: /proc/self/fd tells it apart). The caller closes it. */
function pipeEnd(): number {
  const [r, w] = pipeRaw();
  closeRaw(w);
  return r;
}

// ---- 1. defects -------------------------------------------------------------------------------------

describe("defects: user code in the fd list (an { fd } getter) runs after the send path took the payload address / socket number", () => {
  // One fresh, never-materialised payload per call (the one-off path since 0d91fde); the fd getter
  // creates its ArrayBuffer — JSC moves a small typed array's storage then — and rewrites the bytes.
  const senders: [string, () => [Sock, Sock], (tx: Sock, u: Uint8Array, fds: { fd: number }[]) => Promise<unknown>][] = [
    ["sendFdsSync (datagram)", () => UnixDatagram.pair(), async (tx, u, fds) => tx.sendFdsSync(u, fds)],
    ["sendFds (async, seqpacket)", () => UnixSeqpacket.pair(), (tx, u, fds) => tx.sendFds(u, fds)],
    ["sendFdsAllSync (stream)", () => UnixStream.pair(), async (tx, u, fds) => (tx as UnixStream).sendFdsAllSync(u, fds)],
    ["sendFdsAll (async, stream)", () => UnixStream.pair(), (tx, u, fds) => (tx as UnixStream).sendFdsAll(u, fds)],
  ];
  for (const [name, make, send] of senders) {
    test(`${name}: a one-off payload whose ArrayBuffer an { fd } getter creates is sent from its current storage (regression of 0d91fde)`, async () => {
      await expectNoFdLeak(async () => {
        const [tx, rx] = make();
        const p = pipeEnd();
        try {
          const u = new Uint8Array(8).fill(0x41); // "AAAAAAAA", no ArrayBuffer object yet
          const like = {
            get fd() {
              void u.subarray(0); // any .buffer-creating operation moves the storage
              u.fill(0x42); // the payload now reads "BBBBBBBB"
              return p;
            },
          };
          await send(tx, u, [like]);
          using r = rx.recvFdsSync(1, { bufferSize: 64 });
          expect(r.fds.length).toBe(1);
          expect(fdTarget(r.fds[0]!.fd)).toBe(fdTarget(p));
          // before the fix: "AAAAAAAA" — read from the storage the Uint8Array no longer owns
          expect(text(r.data)).toBe(text(u));
        } finally {
          closeRaw(p);
          tx.close();
          rx.close();
        }
      });
    });
  }

  test("sendFdsSync: a payload an { fd } getter detaches (ArrayBuffer.transfer) sends nothing from the new owner's memory (older than 0d91fde)", async () => {
    await expectNoFdLeak(async () => {
      const [tx, rx] = UnixDatagram.pair();
      const p = pipeEnd();
      try {
        for (const warm of [0, 2]) {
          // warm = 2: the block remembers the buffer (second use in a row) before the getter detaches it
          const u = new Uint8Array(8).fill(0x41);
          for (let i = 0; i < warm; i++) {
            tx.sendFdsSync(u);
            rx.recvFdsSync(0)[Symbol.dispose]();
          }
          let moved: Uint8Array | null = null;
          const like = {
            get fd() {
              moved = new Uint8Array((u.buffer as ArrayBuffer).transfer());
              moved.fill(0x43); // the new owner's bytes: "CCCCCCCC"
              return p;
            },
          };
          let sent: number | undefined;
          const err = catchErr(() => (sent = tx.sendFdsSync(u, [like])));
          expect(u.byteLength).toBe(0); // precondition: the payload is now empty
          if (err === undefined) {
            using r = rx.recvFdsSync(1, { bufferSize: 64 });
            // before the fix: sent 8, the datagram is "CCCCCCCC" (another buffer's memory)
            expect({ sent, data: text(r.data) }).toEqual({ sent: 0, data: "" });
          }
          expect(moved).not.toBeNull();
        }
      } finally {
        closeRaw(p);
        tx.close();
        rx.close();
      }
    });
  });

  test("sendFdsVectoredSync: a second buffer whose ArrayBuffer an { fd } getter creates is sent from its current storage (older than 0d91fde)", async () => {
    await expectNoFdLeak(async () => {
      const [tx, rx] = UnixDatagram.pair();
      const p = pipeEnd();
      try {
        const head = enc.encode("hd");
        const tail = new Uint8Array(6).fill(0x41);
        const like = {
          get fd() {
            void tail.subarray(0);
            tail.fill(0x42);
            return p;
          },
        };
        tx.sendFdsVectoredSync([head, tail], [like]);
        using r = rx.recvFdsSync(1, { bufferSize: 64 });
        expect(r.fds.length).toBe(1);
        // before the fix: "hdAAAAAA"
        expect(text(r.data)).toBe("hd" + text(tail));
      } finally {
        closeRaw(p);
        tx.close();
        rx.close();
      }
    });
  });

  // Same ordering, other victim: the socket's fd number is read (socket.ts `const sock = this.fd`)
  // before the fd list is resolved; a getter that closes the socket lets a new socket take the number,
  // and the message with its fds goes to that unrelated socket. Older than 0d91fde.
  test("sendFdsSync: an { fd } getter that closes the sending socket does not divert the message (and its fd) to a socket that reused the number", async () => {
    await expectNoFdLeak(async () => {
      const [tx, rx] = UnixDatagram.pair();
      const p = pipeEnd();
      const num = tx.fd;
      let other: UnixDatagram[] = [];
      try {
        const like = {
          get fd() {
            tx.close();
            other = UnixDatagram.pair(); // takes the freed number
            return p;
          },
        };
        const err = catchErr(() => tx.sendFdsSync("stray", [like]));
        expect(other.some((s) => s.fd === num)).toBe(true); // precondition: the number was reused
        const delivered: string[] = [];
        for (const s of other) {
          setNonblocking(s.fd);
          try {
            using r = s.recvFdsSync(4, { bufferSize: 64 });
            delivered.push(`${text(r.data)} + ${r.fds.length} fd`);
          } catch (e) {
            if (!(e instanceof SystemError && e.code === "EAGAIN")) throw e;
          }
        }
        // before the fix: sendFdsSync returns 5 and the new pair receives "stray + 1 fd"
        expect(delivered).toEqual([]);
        expect(err).toBeDefined();
      } finally {
        closeRaw(p);
        tx.close();
        rx.close();
        for (const s of other) s.close();
      }
    });
  });

  // The cache "materialises" with `buf.buffer`, which an own or subclass `buffer` property shadows: the
  // remembered address then points at storage JSC moves at the first real materialisation (subarray,
  // DataView, ...). Send side only here: the receive side would have the kernel write into the
  // abandoned (eventually freed) storage. Also in IovecArray.set (vectored/low-level slot 0). Older than 0d91fde.
  test("a remembered payload whose `buffer` property is shadowed (Uint8Array subclass) is not sent from abandoned storage after a real materialisation", async () => {
    await expectNoFdLeak(async () => {
      const [tx, rx] = UnixDatagram.pair();
      try {
        class Chunk extends Uint8Array {
          override get buffer(): ArrayBuffer {
            return new ArrayBuffer(0); // e.g. a wrapper that hides its backing store
          }
        }
        const u = new Chunk(8).fill(0x41);
        for (let i = 0; i < 3; i++) {
          tx.sendFdsSync(u);
          using r = rx.recvFdsSync(0, { bufferSize: 64 });
          expect(text(r.data)).toBe("AAAAAAAA");
        }
        void Uint8Array.prototype.subarray.call(u, 0); // creates the real ArrayBuffer: the storage moves
        u.fill(0x42);
        tx.sendFdsSync(u);
        using r = rx.recvFdsSync(0, { bufferSize: 64 });
        // before the fix: "AAAAAAAA"
        expect(text(r.data)).toBe("BBBBBBBB");
      } finally {
        tx.close();
        rx.close();
      }
    });
  });
});

// ---- 2. EAGAIN: sentinels stay inside the library ---------------------------------------------------

/** Fills `tx` (non-blocking) with sends of `chunk` until EAGAIN; every return value must be a byte count. */
function fillUntilEagain(send: () => number): number {
  let total = 0;
  for (let i = 0; i < 100_000; i++) {
    let n: number;
    try {
      n = send();
    } catch (e) {
      if (e instanceof SystemError && e.code === "EAGAIN") {
        expect(e.syscall).toBe("sendmsg");
        return total;
      }
      throw e;
    }
    expect(n).toBeGreaterThan(0); // never -1 (WOULD_BLOCK) from a sync send
    total += n;
  }
  throw new Error("the socket never filled");
}

describe("sync API on sockets the caller made non-blocking: EAGAIN is thrown, never a sentinel", () => {
  test(`recvFdsVectoredSync (0, 1, 2 buffers), recvFdsExactIntoSync, recvFdsSync(> budget) on every kind${ZERO_IOV_NOTE}`, async () => {
    await expectNoFdLeak(() => {
      for (const make of [() => UnixStream.pair(), () => UnixDatagram.pair(), () => UnixSeqpacket.pair()] as (() => [Sock, Sock])[]) {
        const [tx, rx] = make();
        try {
          setNonblocking(rx.fd);
          if (!EMULATED) expectEagain(() => rx.recvFdsVectoredSync(4, []), "recvmsg");
          expectEagain(() => rx.recvFdsVectoredSync(4, [new Uint8Array(8)]), "recvmsg");
          expectEagain(() => rx.recvFdsVectoredSync(4, [new Uint8Array(8), new Uint8Array(8)]), "recvmsg");
          expectEagain(() => rx.recvFdsVectoredSync(1000, [new Uint8Array(8), new Uint8Array(8)]), "recvmsg");
          expectEagain(() => rx.recvFdsExactIntoSync(0, new Uint8Array(8)), "recvmsg");
          expectEagain(() => rx.recvFdsSync(1000), "recvmsg");
          expectEagain(() => rx.recvFdsExactSync(300), "recvmsg");
          // and a real message afterwards still arrives whole
          const p = pipeEnd();
          tx.sendFdsSync("ok", [p]);
          closeRaw(p);
          using r = rx.recvFdsVectoredSync(4, [new Uint8Array(1), new Uint8Array(8)]);
          expect(r.bytesRead).toBe(2);
          expect(r.fds.length).toBe(1);
          expect(Object.isFrozen(r.fds)).toBe(false);
        } finally {
          tx.close();
          rx.close();
        }
      }
    });
  });

  test("sendFdsVectoredSync and cmsgSendmsg on a full socket throw EAGAIN (no -1 byte count)", async () => {
    await expectNoFdLeak(() => {
      for (const make of [() => UnixStream.pair(), () => UnixSeqpacket.pair()] as (() => [Sock, Sock])[]) {
        const [tx, rx] = make();
        try {
          setNonblocking(tx.fd);
          const chunk = new Uint8Array(4096);
          expect(fillUntilEagain(() => tx.sendFdsVectoredSync([chunk, chunk.subarray(0, 100)]))).toBeGreaterThan(0);
          expectEagain(() => tx.sendFdsVectoredSync([chunk]), "sendmsg");
          expectEagain(() => tx.sendFdsSync(chunk), "sendmsg");
          const anc = new SocketAncillary(new Uint8Array(64));
          expectEagain(() => cmsgSendmsg(tx, [chunk], anc), "sendmsg");
        } finally {
          tx.close();
          rx.close();
        }
      }
    });
  });

  test("sendFdsAllSync: the control-less tail (sendRange) throws EAGAIN once the socket fills; the fd went exactly once", async () => {
    await expectNoFdLeak(() => {
      const [tx, rx] = UnixStream.pair();
      const p = pipeEnd();
      try {
        setNonblocking(tx.fd);
        setNonblocking(rx.fd);
        const big = new Uint8Array(4 << 20).fill(7);
        const err = catchErr(() => tx.sendFdsAllSync(big, [p]));
        expect(err).toBeInstanceOf(SystemError);
        expect((err as SystemError).code).toBe("EAGAIN");
        // drain: the fd arrived once, with the first bytes; fewer bytes than the whole payload
        let bytes = 0;
        let fds = 0;
        const buf = new Uint8Array(1 << 16);
        for (;;) {
          let r;
          try {
            r = rx.recvFdsIntoSync(4, buf);
          } catch (e) {
            if (e instanceof SystemError && e.code === "EAGAIN") break;
            throw e;
          }
          bytes += r.bytesRead;
          fds += r.fds.length;
          for (const f of r.fds) expect(fdTarget(f.fd)).toBe(fdTarget(p));
          r[Symbol.dispose]();
        }
        expect(fds).toBe(1);
        expect(bytes).toBeGreaterThan(0);
        expect(bytes).toBeLessThan(big.byteLength);
      } finally {
        closeRaw(p);
        tx.close();
        rx.close();
      }
    });
  });
});

describe("async API: the WOULD_BLOCK sentinels never reach a caller", () => {
  type Variant = [string, (s: Sock) => Promise<{ fds: OwnedFd[] } & ({ bytesRead: number } | { data: Uint8Array })>];
  const variants: Variant[] = [
    ["recvFds", (s) => s.recvFds(4)],
    ["recvFds(>budget)", (s) => s.recvFds(1000)],
    ["recvFdsExact(0)", (s) => s.recvFdsExact(0)],
    ["recvFdsInto", (s) => s.recvFdsInto(4, new Uint8Array(16))],
    ["recvFdsExactInto(0)", (s) => s.recvFdsExactInto(0, new Uint8Array(16))],
    ["recvFdsVectored([])", (s) => s.recvFdsVectored(4, [])],
    ["recvFdsVectored([a])", (s) => s.recvFdsVectored(4, [new Uint8Array(16)])],
    ["recvFdsVectored([a,b])", (s) => s.recvFdsVectored(4, [new Uint8Array(1), new Uint8Array(16)])],
    ["recvFdsVectored([a,b,c], >budget)", (s) => s.recvFdsVectored(1000, [new Uint8Array(1), new Uint8Array(1), new Uint8Array(16)])],
  ];
  const kinds: [string, () => [Sock, Sock]][] = [
    ["stream", () => UnixStream.pair()],
    ["datagram", () => UnixDatagram.pair()],
    ["seqpacket", () => UnixSeqpacket.pair()],
  ];
  test(`every async receive, on every kind, waiting first or not, on library- and caller-non-blocking sockets: fds is a fresh mutable array${ZERO_IOV_NOTE}`, async () => {
    await expectNoFdLeak(async () => {
      for (const [kind, make] of kinds) {
        for (const userNonblocking of [false, true]) {
          const [tx, rx] = make();
          try {
            if (userNonblocking) setNonblocking(rx.fd);
            for (const [name, recv] of variants) {
              for (const waitFirst of [false, true]) {
                const where = `${kind} ${name} ${waitFirst ? "waiting" : "ready"}${userNonblocking ? " O_NONBLOCK" : ""}`;
                if (kind === "stream" && name.includes("[]")) continue; // a 0-byte stream read consumes nothing: no message to wait for
                if (EMULATED && name.includes("[]")) continue; // see ZERO_IOV_NOTE
                const payload = name.includes("[]") ? "" : "x";
                let pending: ReturnType<typeof recv>;
                if (waitFirst) {
                  pending = recv(rx); // first attempt: EAGAIN → the reactor
                  await new Promise((r) => setImmediate(r));
                  tx.sendFdsSync(payload);
                } else {
                  tx.sendFdsSync(payload);
                  pending = recv(rx);
                }
                const r = await pending;
                expect({ where, sentinel: r.fds === WOULD_BLOCK_FDS, frozen: Object.isFrozen(r.fds), n: r.fds.length }).toEqual({ where, sentinel: false, frozen: false, n: 0 });
                const got = "bytesRead" in r ? r.bytesRead : r.data.byteLength;
                expect({ where, got }).toEqual({ where, got: payload.length });
                r.fds.push(OwnedFd.from(pipeEnd())); // a caller may use the array as its own
                closeAll(r.fds);
              }
            }
          } finally {
            tx.close();
            rx.close();
          }
        }
      }
    });
  });

  test("async sends that wait for room resolve with byte counts (never -1) and deliver every fd once", async () => {
    await expectNoFdLeak(async () => {
      const [tx, rx] = UnixSeqpacket.pair();
      const p = pipeEnd();
      try {
        setNonblocking(tx.fd);
        const chunk = new Uint8Array(8192).fill(1);
        const queued = fillUntilEagain(() => tx.sendFdsSync(chunk));
        const a = tx.sendFds(enc.encode("one"), [p]); // EAGAIN first: waits
        const b = tx.sendFdsVectored([enc.encode("tw"), enc.encode("o")], [p, p]);
        await new Promise((r) => setImmediate(r));
        // drain the filler, then the two
        let drained = 0;
        while (drained < queued) {
          using r = await rx.recvFdsInto(0, new Uint8Array(8192));
          drained += r.bytesRead;
        }
        expect(await a).toBe(3);
        expect(await b).toBe(3);
        using one = await rx.recvFds(4);
        using two = await rx.recvFds(4);
        expect([text(one.data), one.fds.length, text(two.data), two.fds.length]).toEqual(["one", 1, "two", 2]);
      } finally {
        closeRaw(p);
        tx.close();
        rx.close();
      }
    });
  });
});

/** Opens /dev/null until every number in `numbers` is one of them; returns all it opened (the caller closes them). */
function occupy(numbers: readonly number[]): number[] {
  const want = new Set(numbers);
  const opened: number[] = [];
  for (let i = 0; i < numbers.length + 64 && [...want].some((n) => !opened.includes(n)); i++) opened.push(openRaw("/dev/null"));
  expect(numbers.every((n) => opened.includes(n))).toBe(true); // precondition: every freed number is a sentinel now
  return opened;
}

// ---- 3. leak-net pending stack ------------------------------------------------------------------------

describe("leak net: pending stack and closeAll over arrays the library did not make", () => {
  test("a receive never yields more than abi.maxFdsPerSend fds, even with maxFds 1000 and two full messages queued (enqueueAll's k >= 256 branch is unreachable by receives on Linux)", async () => {
    await expectNoFdLeak(() => {
      const [tx, rx] = UnixStream.pair();
      const p = pipeEnd();
      try {
        tx.sendFdsSync("a", Array(MAX).fill(p));
        tx.sendFdsSync("b", Array(MAX).fill(p));
        using r1 = rx.recvFdsSync(1000);
        using r2 = rx.recvFdsSync(1000);
        expect([text(r1.data), r1.fds.length, text(r2.data), r2.fds.length]).toEqual(["a", MAX, "b", MAX]);
      } finally {
        closeRaw(p);
        tx.close();
        rx.close();
      }
    });
  });

  for (const turn of [false, true]) {
    test(`closeAll over a user array (from, dup, released, duplicates, two received batches, a direct 300-fd adoptSlots batch) closes each owned fd once, ${turn ? "after" : "before"} the leak net registered them`, async () => {
      await expectNoFdLeak(async () => {
        const [tx, rx] = UnixSeqpacket.pair();
        const src = pipeEnd();
        let numbers: number[] = [];
        let releasedNumber = -1;
        try {
          await (async () => {
            const a = OwnedFd.from(dupRaw(src));
            const d = a.dup();
            const rel = OwnedFd.from(dupRaw(src));
            tx.sendFdsSync("x", Array(5).fill(src));
            const batch1 = rx.recvFdsSync(5).fds;
            tx.sendFdsSync("y", Array(3).fill(src));
            const batch2 = rx.recvFdsSync(3).fds;
            const words = new Int32Array(302).fill(-1);
            for (let i = 0; i < 300; i++) words[i + 1] = dupRaw(src);
            const big = adoptSlots(words, 0, 302); // larger than the whole stack (darwin-sized)
            expect(big.length).toBe(300);
            if (turn) await new Promise((r) => setImmediate(r));
            const all = [a, d, rel, ...batch1, ...batch2, ...big];
            numbers = all.filter((o) => o !== rel).map((o) => o.fd);
            batch2[1]!.close();
            releasedNumber = rel.release();
            big[299]!.close();
            const userArray = [batch2[2]!, a, ...big.slice(0, 150), d, a, rel, ...batch1.slice().reverse(), batch2[0]!, batch2[1]!, ...big.slice(150), batch1[0]!];
            closeAll(userArray);
            for (const o of all) expect(o.closed).toBe(true);
            closeAll(userArray);
          })();
          for (const n of numbers) expect(isOpen(n)).toBe(false);
          expect(isOpen(releasedNumber)).toBe(true);
          // occupy the freed numbers, GC (objects collected, net runs if it were wrong), then check
          const sentinels = occupy(numbers);
          for (let i = 0; i < 10; i++) {
            Bun.gc(true);
            await Bun.sleep(5);
          }
          for (const s of sentinels) expect(fdTarget(s)).toBe("/dev/null");
          expect(fdTarget(releasedNumber)).toBe(fdTarget(src));
          for (const s of sentinels) closeRaw(s);
        } finally {
          if (releasedNumber >= 0) closeRaw(releasedNumber);
          closeRaw(src);
          tx.close();
          rx.close();
        }
      });
    });
  }

  test("closeAll attempts every element: an element whose close() throws, and more than 256 fds around it; the first error is thrown after all are closed", async () => {
    await expectNoFdLeak(() => {
      const src = pipeEnd();
      try {
        const before = Array.from({ length: 300 }, () => OwnedFd.from(dupRaw(src)));
        const after = Array.from({ length: 300 }, () => OwnedFd.from(dupRaw(src)));
        const numbers = [...before, ...after].map((o) => o.fd);
        const boom = new Error("element close failed");
        const calls: string[] = [];
        const list = [
          ...before,
          { close: () => { calls.push("first"); throw boom; } },
          ...after,
          { close: () => { calls.push("second"); throw new Error("later failure"); } },
          { noClose: true },
        ] as unknown as OwnedFd[];
        const thrown = catchErr(() => closeAll(list));
        expect(thrown).toBe(boom);
        expect(calls).toEqual(["first", "second"]);
        for (const o of [...before, ...after]) expect(o.closed).toBe(true);
        for (const n of numbers) expect(isOpen(n)).toBe(false);
      } finally {
        closeRaw(src);
      }
    });
  });

  test("closeAll called from user code inside another closeAll (an element's close(), an index getter) closes each fd once and never a number opened meanwhile", async () => {
    await expectNoFdLeak(() => {
      const src = pipeEnd();
      const reopened: number[] = [];
      try {
        const outer = Array.from({ length: 5 }, () => OwnedFd.from(dupRaw(src)));
        const inner = Array.from({ length: 3 }, () => OwnedFd.from(dupRaw(src)));
        const innerByGetter = OwnedFd.from(dupRaw(src));
        const outerNumbers = outer.map((o) => o.fd);
        const innerNumbers = [...inner.map((o) => o.fd), innerByGetter.fd];
        const list: OwnedFd[] = [outer[0]!, outer[1]!];
        // an element whose close() closes other OwnedFds, then opens fds that reuse their numbers
        list.push({
          close: () => {
            closeAll(inner);
            for (let i = 0; i < inner.length; i++) reopened.push(dupRaw(src));
          },
        } as unknown as OwnedFd);
        list.push(outer[2]!);
        // an index getter that does the same while the outer call holds numbers it has not closed yet
        Object.defineProperty(list, 4, {
          get: () => {
            closeAll([innerByGetter]);
            reopened.push(dupRaw(src));
            return outer[3]!;
          },
          enumerable: true,
          configurable: true,
        });
        list.push(outer[4]!);
        closeAll(list);
        for (const o of [...outer, ...inner, innerByGetter]) expect(o.closed).toBe(true);
        // The fds opened meanwhile reuse freed numbers (the nested calls' and those the outer call
        // had closed by then): none of them may be closed by the outer call, and every number the
        // OwnedFds owned is closed (expectNoFdLeak counts the rest).
        expect(reopened.length).toBe(4);
        expect(reopened.some((n) => innerNumbers.includes(n) || outerNumbers.includes(n))).toBe(true);
        for (const n of reopened) expect(isOpen(n)).toBe(true);
      } finally {
        for (const n of reopened) closeRaw(n);
        closeRaw(src);
      }
    });
  });

  test("closeAll over an array whose index getter throws: that element is skipped, every other one is closed, the error propagates", async () => {
    await expectNoFdLeak(() => {
      const src = pipeEnd();
      try {
        const owned = Array.from({ length: 4 }, () => OwnedFd.from(dupRaw(src)));
        const numbers = owned.map((o) => o.fd);
        const list: OwnedFd[] = [owned[0]!, owned[1]!];
        Object.defineProperty(list, 2, { get: () => { throw new Error("getter"); }, enumerable: true, configurable: true });
        list.push(owned[2]!);
        expect(() => closeAll(list)).toThrow("getter");
        expect([owned[0]!.closed, owned[1]!.closed, owned[2]!.closed, owned[3]!.closed]).toEqual([true, true, true, false]);
        expect([isOpen(numbers[0]!), isOpen(numbers[1]!), isOpen(numbers[2]!)]).toEqual([false, false, false]);
        closeAll([owned[3]!]);
        for (const n of numbers) expect(isOpen(n)).toBe(false);
      } finally {
        closeRaw(src);
      }
    });
  });

  test("closeAll: the first error wins even when a later index getter throws, and the elements after a throwing getter are still closed", async () => {
    await expectNoFdLeak(() => {
      const src = pipeEnd();
      try {
        const a = OwnedFd.from(dupRaw(src));
        const b = OwnedFd.from(dupRaw(src));
        const numbers = [a.fd, b.fd];
        const first = new Error("first");
        const list: OwnedFd[] = [a, { close: () => { throw first; } } as unknown as OwnedFd];
        Object.defineProperty(list, 2, { get: () => { throw new Error("second"); }, enumerable: true, configurable: true });
        list.push(b);
        const thrown = catchErr(() => closeAll(list));
        expect(thrown).toBe(first);
        expect([a.closed, b.closed]).toEqual([true, true]);
        for (const n of numbers) expect(isOpen(n)).toBe(false);
      } finally {
        closeRaw(src);
      }
    });
  });

  test("a close hook that throws mid-batch: every owned fd is still closed, the hook's error is thrown, and later calls still batch (child process: the hook is process-wide)", async () => {
    const child = Bun.spawn([process.execPath, join(import.meta.dir, "fixtures", "close-hook-throws.ts")], { stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    if (code !== 0) throw new Error(`child failed (${code}): ${err}`);
    const report = JSON.parse(out.trim().split("\n").pop()!);
    expect(report.thrown).toBe(`hook failed for ${report.victim}`);
    expect(report.hookCalls).toBe(6); // the hook ran for every fd, the throwing one included
    expect(report.stillOpen).toEqual([]);
    expect(report.allMarked).toBe(true);
    expect(report.batchModeAfter).toBe(true);
    expect(report.qClosed).toBe(true);
  });

  test("an AbortSignal whose own add/removeEventListener are overridden: the library never calls them, and closing the socket's OwnedFd in a closeAll batch rejects the pending receive", async () => {
    {
      // Bun's own lazily created fds (timers, the Worker's loop) exist before the snapshot
      const [x, y] = UnixStream.pair();
      const got = y.recvFds(0);
      await new Promise((r) => setTimeout(r, 20));
      x.sendFdsSync("w");
      (await got).fds.length;
      x.close();
      y.close();
      await shutdownReactor();
    }
    await expectNoFdLeak(async () => {
      const src = pipeEnd();
      const [tx, rx] = UnixStream.pair();
      try {
        const owned = rx.intoFd();
        const sock = UnixStream.fromFd(owned);
        const ac = new AbortController();
        const calls: string[] = [];
        Object.assign(ac.signal, {
          addEventListener: () => calls.push("add"),
          removeEventListener: () => {
            calls.push("remove");
            throw new Error("user removeEventListener");
          },
        });
        const pending = sock.recvFds(1, { signal: ac.signal }).then(
          () => "resolved",
          (e) => (e as { code?: string }).code,
        );
        await new Promise((r) => setTimeout(r, 20)); // waiting on the reactor now
        const others = [OwnedFd.from(dupRaw(src)), OwnedFd.from(dupRaw(src))];
        const numbers = [others[0]!.fd, owned.fd, others[1]!.fd];
        closeAll([others[0]!, owned, others[1]!]);
        expect(await pending).toBe("ERR_UA_CLOSED");
        expect(calls).toEqual([]);
        for (const n of numbers) expect(isOpen(n)).toBe(false);
        // and a look-alike made from AbortSignal.prototype is refused up front
        const fake = Object.create(AbortSignal.prototype) as AbortSignal;
        await expect(tx.recvFds(1, { signal: fake })).rejects.toThrow(/options\.signal/);
      } finally {
        tx.close();
        closeRaw(src);
        await shutdownReactor(); // its epoll + eventfd pairs were created inside the fd snapshot
      }
    });
  });

  test("random walk over every creation path and ending, with turns in between (child process, GC, sentinels, one net warning per dropped fd)", async () => {
    const env: Record<string, string | undefined> = { ...process.env, UNIX_ANCILLARY_DEBUG: "1" };
    const runs = ["11", "12"].map(async (seed) => {
      const child = Bun.spawn([process.execPath, join(import.meta.dir, "fixtures", "leak-net-gc-walk.ts"), seed], { env, stdout: "pipe", stderr: "pipe" });
      const timer = setTimeout(() => child.kill(), 50_000);
      const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
      clearTimeout(timer);
      if (code !== 0) throw new Error(`child (seed ${seed}) failed (${code}): ${err}\n${out}`);
      return JSON.parse(out.trim().split("\n").pop()!);
    });
    for (const report of await Promise.all(runs)) {
      expect(report.debug).toBe(true);
      expect(report.created).toBeGreaterThan(2000); // preconditions: the walk did what it claims
      expect(report.bigDirect).toBe(5);
      expect(report.userArrays).toBeGreaterThan(100);
      expect(report.turns).toBeGreaterThan(10);
      expect(report.leaked).toBeGreaterThan(50);
      expect(report.wrongTarget).toEqual([]);
      expect(report.sentinelsCoverClosed).toBe(true);
      expect(report.sentinelsClosed).toEqual([]); // nothing closed twice
      expect(report.releasedClosed).toEqual([]); // released numbers belong to the caller
      expect(report.aliveClosed).toEqual([]);
      expect(report.closedStillOpen).toEqual([]);
      expect(report.leakedStillOpen).toEqual([]); // every dropped object was on the stack or registered
      expect(report.netWarnings).toBe(report.leaked); // each dropped object finalized exactly once, nothing else
      expect(report.otherWarnings).toEqual([]);
    }
  }, 60_000);
});
