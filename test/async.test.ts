/**
 * Async API tests: the Rust crate's test suite (tests/async_fd.rs, all 11 cases) plus what the crate never tested:
 * FIFO completion order, non-interleaving sends, AbortSignal before/during/after, close() while
 * pending, 1,000 concurrent pending receives, an accept loop under 200 concurrent connects, and a
 * 1 MiB sendFdsAll to a slow reader with a responsive event loop. Every test counts fds
 * (expectNoFdLeak) around its whole body.
 *
 * The reactor behind the waits (src/async/reactor.ts) may open fds of its own the first time it is
 * used (an epoll fd, an eventfd, the Worker's loop): beforeAll warms it up once so that those fds are
 * part of every baseline.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, openSync, readSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  UnixAncillaryError,
  UnixDatagram,
  UnixListener,
  UnixSeqpacket,
  UnixSeqpacketListener,
  UnixStream,
} from "../src/index.ts";
import { K } from "../src/platform/index.ts";
import * as sys from "../src/sys.ts";
import { fdTarget, fdSnapshot, expectNewFds, expectNoNewFds, expectNoFdLeak } from "./helpers/fds.ts";

// ---- helpers --------------------------------------------------------------------------------------

const dir = join(tmpdir(), `ua-async-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
let fileSeq = 0;
const toUnlink: string[] = [];

/** A read-only fd on a fresh temp file holding `content` (the caller closes it with closeSync). */
function tempFileFd(content: string): number {
  const p = `${dir}-${fileSeq++}.txt`;
  writeFileSync(p, content);
  const fd = openSync(p, "r");
  unlinkSync(p);
  return fd;
}

/** Reads an fd from offset 0 (files) as UTF-8. */
function readAll(fd: number, max = 4096): string {
  const buf = Buffer.alloc(max);
  const n = readSync(fd, buf, 0, max, 0);
  return buf.subarray(0, n).toString("utf8");
}

/** A pipe whose read end yields `tag` (one byte): fd identity that survives transfer. */
function taggedPipe(tag: number): { r: number; w: number } {
  const [r, w] = sys.pipe();
  writeSync(w, new Uint8Array([tag]));
  return { r, w };
}

function readTag(fd: number): number {
  const b = new Uint8Array(1);
  const n = readSync(fd, b, 0, 1, null);
  if (n !== 1) throw new Error(`no tag on fd ${fd}`);
  return b[0]!;
}

function devNull(): number {
  return openSync("/dev/null", "r");
}

const text = (u: Uint8Array) => new TextDecoder().decode(u);

async function rejection(p: Promise<unknown> | (() => Promise<unknown>)): Promise<unknown> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection, but the promise resolved");
}

/** Expects the async call to fail with UnixAncillaryError `code`, whether it throws synchronously or rejects. */
async function expectUaError(f: () => Promise<unknown>, code: string): Promise<UnixAncillaryError> {
  const e = await rejection(async () => f());
  expect(e).toBeInstanceOf(UnixAncillaryError);
  expect((e as UnixAncillaryError).code).toBe(code as never);
  return e as UnixAncillaryError;
}

/** Fails (instead of hanging until the test timeout) if `p` does not settle within `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  // (used for every wait that could hang, so a lost wake-up fails fast with a name instead of a timeout)
  let t: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what}: did not settle within ${ms} ms`)), ms);
    }),
  ]);
}

/** Settles to "pending" if `p` has not settled after `ms` (used to prove a receive is really waiting). */
async function stillPending(p: Promise<unknown>, ms = 30): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await Bun.sleep(ms);
  return !settled;
}

function pattern(n: number, seed = 0): Uint8Array {
  const u = new Uint8Array(n);
  for (let i = 0; i < n; i++) u[i] = (i * 31 + seed) & 0xff;
  return u;
}

beforeAll(async () => {
  // Warm the reactor up (it may open its own fds lazily on the first wait).
  const [a, b] = UnixStream.pair();
  const p = b.recvFds(1);
  await Bun.sleep(5);
  a.sendFdsSync("w");
  (await p)[Symbol.dispose]();
  const ac = new AbortController();
  const q = a.recvFds(1, { signal: ac.signal });
  await Bun.sleep(5);
  ac.abort();
  await q.catch(() => {});
  a.close();
  b.close();
  await Bun.sleep(10);
});

afterAll(() => {
  for (const p of toUnlink) {
    try {
      unlinkSync(p);
    } catch {
      // already gone
    }
  }
});

// ---- the Rust crate's tests/async_fd.rs ------------------------------------------------------------------

describe("async_fd (Rust crate parity)", () => {
  test("1 async_stream_send_recv_fd: payload and a file fd whose contents read back", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixStream.pair();
      const file = tempFileFd("async payload");
      const recv = b.recvFds(1); // pending first: the reactor path, not the try-first path
      expect(await stillPending(recv, 10)).toBe(true);
      expect(await a.sendFds("async", [file])).toBe(5);
      const got = await within(recv, 5000, "recvFds");
      expect(text(got.data)).toBe("async");
      expect(got.fds).toHaveLength(1);
      expect(got.fds[0]!.fd).not.toBe(file);
      expect(readAll(got.fds[0]!.fd)).toBe("async payload");
      got[Symbol.dispose]();
      closeSync(file);
      a.close();
      b.close();
    });
  });

  test("2 async_stream_surplus_fds_capped: 3 fds sent, maxFds 1 → 1 fd, the 2 surplus closed", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixStream.pair();
      const fds = [devNull(), devNull(), devNull()];
      await a.sendFds("three", fds);
      const before = fdSnapshot();
      const got = await b.recvFds(1);
      expect(text(got.data)).toBe("three");
      expect(got.fds).toHaveLength(1);
      expectNewFds(before, 1); // only the delivered one is open
      got[Symbol.dispose]();
      fds.forEach((f) => closeSync(f));
      a.close();
      b.close();
    });
  });

  test("3 async_datagram_send_recv_fd", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixDatagram.pair();
      const file = tempFileFd("dgram file");
      const recv = b.recvFds(1);
      await Bun.sleep(5);
      await a.sendFds("dgram", [file]);
      const got = await within(recv, 5000, "recvFds");
      expect(text(got.data)).toBe("dgram");
      expect(got.fds).toHaveLength(1);
      expect(readAll(got.fds[0]!.fd)).toBe("dgram file");
      got[Symbol.dispose]();
      closeSync(file);
      a.close();
      b.close();
    });
  });

  test("4 async_stream_rejects_fds_without_payload_byte: ERR_UA_EMPTY_PAYLOAD (InvalidInput), nothing sent", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixStream.pair();
      const fd = devNull();
      const e = await expectUaError(() => a.sendFds("", [fd]), "ERR_UA_EMPTY_PAYLOAD");
      expect(e.kind).toBe("InvalidInput");
      const e2 = await expectUaError(() => a.sendFdsAll(new Uint8Array(0), [fd]), "ERR_UA_EMPTY_PAYLOAD");
      expect(e2.kind).toBe("InvalidInput");
      expect(sys.pollOne(b.fd, K.POLLIN, 0)).toBe(0); // nothing reached the peer
      closeSync(fd);
      a.close();
      b.close();
    });
  });

  test("5 async_send_fds_all_transfers_payload_and_descriptor: 128 KiB in a spawned task", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixStream.pair();
      const file = tempFileFd("sendall file");
      const payload = pattern(128 * 1024, 5);
      const task = a.sendFdsAll(payload, [file]); // runs concurrently with the receiver below
      const first = await b.recvFds(1);
      expect(first.fds).toHaveLength(1);
      expect(readAll(first.fds[0]!.fd)).toBe("sendall file");
      const chunks = [first.data];
      let total = first.data.byteLength;
      while (total < payload.byteLength) {
        const r = await b.recvFds(1);
        expect(r.fds).toHaveLength(0);
        expect(r.data.byteLength).toBeGreaterThan(0);
        chunks.push(r.data);
        total += r.data.byteLength;
      }
      await within(task, 5000, "sendFdsAll");
      expect(total).toBe(payload.byteLength);
      expect(Buffer.concat(chunks).equals(Buffer.from(payload))).toBe(true);
      first[Symbol.dispose]();
      closeSync(file);
      a.close();
      b.close();
    });
  });

  test("6 async_partial_first_send_delivers_exactly_one_descriptor: SO_SNDBUF 2048, recvmsg-only drain", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixStream.pair();
      sys.setsockoptInt(a.fd, K.SOL_SOCKET, K.SO_SNDBUF, 2048);
      const fd = devNull();
      const payload = pattern(64 * 1024, 9);
      const task = a.sendFdsAll(payload, [fd]);
      let fdsSeen = 0;
      let total = 0;
      const chunks: Uint8Array[] = [];
      while (total < payload.byteLength) {
        const r = await within(b.recvFds(8), 5000, "drain recvFds");
        fdsSeen += r.fds.length;
        total += r.data.byteLength;
        chunks.push(r.data);
        r[Symbol.dispose]();
      }
      await within(task, 5000, "sendFdsAll");
      expect(fdsSeen).toBe(1);
      expect(total).toBe(payload.byteLength);
      expect(Buffer.concat(chunks).equals(Buffer.from(payload))).toBe(true);
      closeSync(fd);
      a.close();
      b.close();
    });
  });

  test("7 async_datagram_payload_truncation_is_an_error: 4-byte buffer → ERR_UA_DATAGRAM_TRUNCATED (InvalidData), fds closed", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixDatagram.pair();
      const fd = devNull();
      const recv = b.recvFds(1, { bufferSize: 4 });
      await Bun.sleep(5);
      await a.sendFds("12345678", [fd]);
      const e = await expectUaError(() => within(recv, 5000, "recvFds"), "ERR_UA_DATAGRAM_TRUNCATED");
      expect(e.kind).toBe("InvalidData");
      closeSync(fd);
      a.close();
      b.close();
    });
  });

  test("8 async_recv_exact_accepts_exact_count: 2 of 2", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixStream.pair();
      const fds = [devNull(), devNull()];
      const recv = b.recvFdsExact(2);
      await Bun.sleep(5);
      await a.sendFds("two", fds);
      const got = await within(recv, 5000, "recvFdsExact");
      expect(text(got.data)).toBe("two");
      expect(got.fds).toHaveLength(2);
      got[Symbol.dispose]();
      fds.forEach((f) => closeSync(f));
      a.close();
      b.close();
    });
  });

  test("9 async_recv_exact_rejects_too_few: 1 vs 2 → ERR_UA_FD_COUNT_MISMATCH, fd closed", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixStream.pair();
      const fd = devNull();
      await a.sendFds("one", [fd]);
      const e = await expectUaError(() => b.recvFdsExact(2), "ERR_UA_FD_COUNT_MISMATCH");
      expect(e.kind).toBe("InvalidData");
      closeSync(fd);
      a.close();
      b.close();
    });
  });

  test("10 async_recv_exact_rejects_too_many: 3 vs 2 → ERR_UA_FD_COUNT_MISMATCH, all closed", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixStream.pair();
      const fds = [devNull(), devNull(), devNull()];
      await a.sendFds("three", fds);
      const e = await expectUaError(() => b.recvFdsExact(2), "ERR_UA_FD_COUNT_MISMATCH");
      expect(e.kind).toBe("InvalidData");
      fds.forEach((f) => closeSync(f));
      a.close();
      b.close();
    });
  });

  test("11 async_recv_exact_datagram_accepts_exact_count", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixDatagram.pair();
      const fds = [devNull(), devNull()];
      const recv = b.recvFdsExact(2);
      await Bun.sleep(5);
      await a.sendFds("dg2", fds);
      const got = await within(recv, 5000, "recvFdsExact");
      expect(text(got.data)).toBe("dg2");
      expect(got.fds).toHaveLength(2);
      got[Symbol.dispose]();
      fds.forEach((f) => closeSync(f));
      a.close();
      b.close();
    });
  });
});

// ---- the other receive shapes wait too --------------------------------------------------------------

describe("Into / Vectored variants", () => {
  test("recvFdsInto, recvFdsExactInto, recvFdsVectored wait for data; sendFdsVectored gathers", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixSeqpacket.pair();
      const fd = devNull();
      const buf = new Uint8Array(16);
      const p1 = b.recvFdsInto(1, buf);
      expect(await stillPending(p1, 10)).toBe(true);
      await a.sendFds("into", [fd]);
      const r1 = await within(p1, 5000, "recvFdsInto");
      expect(r1.bytesRead).toBe(4);
      expect(text(buf.subarray(0, 4))).toBe("into");
      expect(r1.fds).toHaveLength(1);
      r1[Symbol.dispose]();

      const p2 = b.recvFdsExactInto(2, buf);
      await Bun.sleep(5);
      await a.sendFds("ex", [fd, fd]);
      const r2 = await within(p2, 5000, "recvFdsExactInto");
      expect(r2.fds).toHaveLength(2);
      r2[Symbol.dispose]();

      const x = new Uint8Array(3);
      const y = new Uint8Array(10);
      const p3 = b.recvFdsVectored(1, [x, y]);
      await Bun.sleep(5);
      expect(await a.sendFdsVectored(["abc", "defg"], [fd])).toBe(7);
      const r3 = await within(p3, 5000, "recvFdsVectored");
      expect(r3.bytesRead).toBe(7);
      expect(text(x)).toBe("abc");
      expect(text(y.subarray(0, 4))).toBe("defg");
      expect(r3.fds).toHaveLength(1);
      r3[Symbol.dispose]();
      closeSync(fd);
      a.close();
      b.close();
    });
  });
});

// ---- ordering ---------------------------------------------------------------------------------------

describe("FIFO and non-interleaving", () => {
  for (const kind of ["seqpacket", "datagram"] as const) {
    test(`${kind}: 10 concurrent recvFds complete in call order, each with its own message and fd`, async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = kind === "seqpacket" ? UnixSeqpacket.pair() : UnixDatagram.pair();
        const order: number[] = [];
        const recvs = Array.from({ length: 10 }, (_, i) =>
          b.recvFds(1).then((r) => {
            order.push(i);
            return r;
          }),
        );
        expect(await stillPending(recvs[0]!, 10)).toBe(true);
        const pipes = Array.from({ length: 10 }, (_, i) => taggedPipe(100 + i));
        for (let i = 0; i < 10; i++) {
          await a.sendFds(`msg-${i}`, [pipes[i]!.r]);
          if (i % 3 === 0) await Bun.sleep(2); // some arrive while receives wait, some in a burst
        }
        const got = await within(Promise.all(recvs), 5000, "10 receives");
        expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        got.forEach((r, i) => {
          expect(text(r.data)).toBe(`msg-${i}`);
          expect(r.fds).toHaveLength(1);
          expect(readTag(r.fds[0]!.fd)).toBe(100 + i);
          r[Symbol.dispose]();
        });
        for (const p of pipes) {
          closeSync(p.r);
          closeSync(p.w);
        }
        a.close();
        b.close();
      });
    });
  }

  test("seqpacket: 20 concurrent 64 KiB sendFds (buffer fills, later sends wait) arrive whole and in call order", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixSeqpacket.pair();
      const N = 20;
      const size = 64 * 1024;
      const pipes = Array.from({ length: N }, (_, i) => taggedPipe(i));
      const sends = pipes.map((p, i) => a.sendFds(pattern(size, i), [p.r]));
      expect(await stillPending(sends[N - 1]!, 20)).toBe(true); // the socket buffer cannot hold 20 × 64 KiB
      for (let i = 0; i < N; i++) {
        const r = await within(b.recvFds(2, { bufferSize: size + 16 }), 5000, `message ${i}`);
        expect(r.data.byteLength).toBe(size);
        expect(Buffer.from(r.data).equals(Buffer.from(pattern(size, i)))).toBe(true);
        expect(r.fds).toHaveLength(1);
        expect(readTag(r.fds[0]!.fd)).toBe(i);
        r[Symbol.dispose]();
      }
      expect(await within(Promise.all(sends), 5000, "sends")).toEqual(Array(N).fill(size));
      for (const p of pipes) {
        closeSync(p.r);
        closeSync(p.w);
      }
      a.close();
      b.close();
    });
  });

  test("stream: 5 concurrent 300 KiB sendFdsAll never interleave; fds arrive in call order", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixStream.pair();
      const N = 5;
      const size = 300 * 1024;
      const pipes = Array.from({ length: N }, (_, i) => taggedPipe(i));
      const sends = pipes.map((p, i) => a.sendFdsAll(new Uint8Array(size).fill(0x41 + i), [p.r]));
      const tags: number[] = [];
      const chunks: Uint8Array[] = [];
      let total = 0;
      while (total < N * size) {
        const r = await within(b.recvFds(4, { bufferSize: 65536 }), 5000, "stream drain");
        for (const f of r.fds) tags.push(readTag(f.fd));
        r[Symbol.dispose]();
        chunks.push(r.data);
        total += r.data.byteLength;
      }
      await within(Promise.all(sends), 5000, "sends");
      expect(tags).toEqual([0, 1, 2, 3, 4]);
      const all = Buffer.concat(chunks);
      expect(all.byteLength).toBe(N * size);
      for (let i = 0; i < N; i++) {
        const run = all.subarray(i * size, (i + 1) * size);
        // every byte of run i is 'A'+i: no other send's bytes in between
        expect(run.every((x) => x === 0x41 + i)).toBe(true);
      }
      for (const p of pipes) {
        closeSync(p.r);
        closeSync(p.w);
      }
      a.close();
      b.close();
    });
  });
});

// ---- AbortSignal --------------------------------------------------------------------------------------

describe("abort", () => {
  test("BEFORE: a pre-aborted signal rejects at once and receives nothing (the message stays for the next receive)", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixSeqpacket.pair();
      const fd = devNull();
      await a.sendFds("kept", [fd]);
      const reason = new Error("why");
      const ac = new AbortController();
      ac.abort(reason);
      const before = fdSnapshot();
      const e = await expectUaError(() => b.recvFds(1, { signal: ac.signal }), "ERR_UA_ABORTED");
      expect(e.cause).toBe(reason);
      expect(e.kind).toBe("Aborted");
      await expectUaError(() => b.recvFdsInto(1, new Uint8Array(8), { signal: ac.signal }), "ERR_UA_ABORTED");
      expectNoNewFds(before); // nothing was received
      const got = await within(b.recvFds(1), 1000, "next recvFds");
      expect(text(got.data)).toBe("kept");
      expect(got.fds).toHaveLength(1);
      got[Symbol.dispose]();
      // a pre-aborted send sends nothing either
      await expectUaError(() => a.sendFds("never", [fd], { signal: AbortSignal.abort() }), "ERR_UA_ABORTED");
      expect(sys.pollOne(b.fd, K.POLLIN, 20)).toBe(0);
      closeSync(fd);
      a.close();
      b.close();
    });
  });

  test("DURING: abort while waiting rejects; fds unchanged; a later send goes to the next receive", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixStream.pair();
      const fd = devNull();
      const ac = new AbortController();
      const before = fdSnapshot();
      const p = b.recvFds(1, { signal: ac.signal });
      expect(await stillPending(p, 20)).toBe(true);
      ac.abort("stop");
      const e = await expectUaError(() => within(p, 1000, "aborted recvFds"), "ERR_UA_ABORTED");
      expect(e.cause).toBe("stop");
      expectNoNewFds(before);
      await Bun.sleep(10);
      await a.sendFds("after", [fd]);
      const got = await within(b.recvFds(1), 2000, "recvFds after abort");
      expect(text(got.data)).toBe("after");
      expect(got.fds).toHaveLength(1);
      got[Symbol.dispose]();
      closeSync(fd);
      a.close();
      b.close();
    });
  });

  test("DURING, queued: aborting the 2nd of 3 queued receives skips it; 1st and 3rd get messages 1 and 2", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixSeqpacket.pair();
      const ac = new AbortController();
      const p1 = b.recvFds(1);
      const p2 = b.recvFds(1, { signal: ac.signal });
      const p3 = b.recvFds(1);
      await Bun.sleep(10);
      ac.abort();
      await expectUaError(() => p2, "ERR_UA_ABORTED");
      const fd = devNull();
      await a.sendFds("m1", [fd]);
      await a.sendFds("m2", [fd]);
      const [r1, r3] = await within(Promise.all([p1, p3]), 2000, "receives 1 and 3");
      expect(text(r1.data)).toBe("m1");
      expect(text(r3.data)).toBe("m2");
      r1[Symbol.dispose]();
      r3[Symbol.dispose]();
      closeSync(fd);
      a.close();
      b.close();
    });
  });

  test("AFTER arrival: aborting a resolved receive changes nothing; its fds stay open and owned", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixStream.pair();
      const file = tempFileFd("still mine");
      const ac = new AbortController();
      const p = b.recvFds(1, { signal: ac.signal });
      await Bun.sleep(5);
      await a.sendFds("x", [file]);
      const got = await within(p, 2000, "recvFds");
      ac.abort();
      await Bun.sleep(10);
      expect(got.fds).toHaveLength(1);
      expect(got.fds[0]!.closed).toBe(false);
      expect(fdTarget(got.fds[0]!.fd)).not.toBeNull();
      expect(readAll(got.fds[0]!.fd)).toBe("still mine");
      // the socket still works with the same (aborted) signal's controller gone
      const q = b.recvFds(1);
      await a.sendFds("y");
      expect(text((await within(q, 2000, "next recvFds")).data)).toBe("y");
      got[Symbol.dispose]();
      closeSync(file);
      a.close();
      b.close();
    });
  });

  test("sendFdsAll aborted mid-way: error carries bytesSent; the receiver gets exactly that prefix and the one fd", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixStream.pair();
      const fd = devNull();
      const payload = pattern(4 * 1024 * 1024, 3); // far more than the socket buffers hold
      const ac = new AbortController();
      const p = a.sendFdsAll(payload, [fd], { signal: ac.signal });
      await Bun.sleep(20);
      ac.abort();
      const e = (await expectUaError(() => within(p, 2000, "aborted sendFdsAll"), "ERR_UA_ABORTED")) as UnixAncillaryError & { bytesSent?: number };
      expect(typeof e.bytesSent).toBe("number");
      expect(e.bytesSent!).toBeGreaterThan(0);
      expect(e.bytesSent!).toBeLessThan(payload.byteLength);
      let total = 0;
      let fds = 0;
      const chunks: Uint8Array[] = [];
      while (sys.pollOne(b.fd, K.POLLIN, 0) !== 0) {
        const r = b.recvFdsSync(4, { bufferSize: 65536 });
        fds += r.fds.length;
        total += r.data.byteLength;
        chunks.push(r.data);
        r[Symbol.dispose]();
      }
      expect(fds).toBe(1);
      expect(total).toBe(e.bytesSent!);
      expect(Buffer.concat(chunks).equals(Buffer.from(payload.subarray(0, total)))).toBe(true);
      closeSync(fd);
      a.close();
      b.close();
    });
  });
});

// ---- close() while pending --------------------------------------------------------------------------

describe("close while pending", () => {
  test("close() rejects the pending recvFds and queued ones with ERR_UA_CLOSED; fd count back to baseline", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixStream.pair();
      const p: Promise<unknown>[] = [b.recvFds(1), b.recvFds(1), b.recvFdsInto(1, new Uint8Array(4))];
      expect(await stillPending(p[0]!, 20)).toBe(true);
      b.close();
      for (const q of p) {
        const e = await expectUaError(() => within(q, 1000, "recv after close"), "ERR_UA_CLOSED");
        expect(e.kind).toBe("Closed");
      }
      // a receive on the closed socket fails at once, too
      await expectUaError(() => b.recvFds(1), "ERR_UA_CLOSED");
      a.close();
    });
  });

  test("close() of the sender while sendFdsAll waits for buffer space → ERR_UA_CLOSED with bytesSent", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixStream.pair();
      const fd = devNull();
      const p = a.sendFdsAll(pattern(4 * 1024 * 1024), [fd]);
      await Bun.sleep(20);
      a.close();
      const e = (await expectUaError(() => within(p, 1000, "send after close"), "ERR_UA_CLOSED")) as UnixAncillaryError & { bytesSent?: number };
      expect(e.bytesSent!).toBeGreaterThan(0);
      // drain and close what reached b (one fd in flight)
      for (;;) {
        const r = b.recvFdsSync(4, { bufferSize: 65536 });
        r[Symbol.dispose]();
        if (r.data.byteLength === 0) break;
      }
      closeSync(fd);
      b.close();
    });
  });
});

// ---- scale ------------------------------------------------------------------------------------------

describe("scale", () => {
  test("1,000 socketpairs each with a pending recvFds; every sender sends 1 fd → all resolve; no fd leaks", async () => {
    await expectNoFdLeak(async () => {
      const N = 1000;
      const pairs = Array.from({ length: N }, () => UnixStream.pair());
      const recvs = pairs.map(([, b]) => b.recvFds(1));
      await Bun.sleep(50);
      const fd = devNull();
      const target = fdTarget(fd);
      for (let i = 0; i < N; i++) pairs[i]![0].sendFdsSync(String(i % 10), [fd]);
      const got = await within(Promise.all(recvs), 20000, "1000 receives");
      got.forEach((r, i) => {
        expect(text(r.data)).toBe(String(i % 10));
        expect(r.fds).toHaveLength(1);
        if (i % 97 === 0) expect(fdTarget(r.fds[0]!.fd)).toBe(target);
        r[Symbol.dispose]();
      });
      closeSync(fd);
      for (const [a, b] of pairs) {
        a.close();
        b.close();
      }
    });
  }, 60000);

  test("accept loop: for await over a listener under 200 concurrent UnixStream.connect; each conn gets an fd and replies", async () => {
    const path = `${dir}-accept.sock`;
    toUnlink.push(path);
    await expectNoFdLeak(async () => {
      const N = 200;
      const listener = await UnixListener.bind(path);
      const reply = taggedPipe(0xaa);
      const handlers: Promise<void>[] = [];
      const server = (async () => {
        let n = 0;
        for await (const conn of listener) {
          handlers.push(
            (async () => {
              const m = await conn.recvFds(1);
              expect(m.fds).toHaveLength(1);
              const id = text(m.data);
              m[Symbol.dispose]();
              await conn.sendFds(`ack ${id}`, [reply.r]);
              conn.close();
            })(),
          );
          if (++n === N) break;
        }
      })();
      const clients = Array.from({ length: N }, async (_, i) => {
        const c = await UnixStream.connect(path);
        const fd = devNull();
        await c.sendFds(`hello ${i}`, [fd]);
        closeSync(fd);
        const r = await c.recvFds(1);
        expect(text(r.data)).toBe(`ack hello ${i}`);
        expect(r.fds).toHaveLength(1);
        expect(fdTarget(r.fds[0]!.fd)).toBe(fdTarget(reply.r));
        r[Symbol.dispose]();
        c.close();
      });
      await within(Promise.all(clients), 20000, "200 clients");
      await within(server, 5000, "accept loop");
      await within(Promise.all(handlers), 5000, "handlers");
      listener.close();
      closeSync(reply.r);
      closeSync(reply.w);
    });
  }, 60000);

  test("for await ends quietly when the listener is closed while waiting (seqpacket)", async () => {
    const path = `${dir}-seq.sock`;
    toUnlink.push(path);
    await expectNoFdLeak(async () => {
      const listener = await UnixSeqpacketListener.bind(path);
      const accepted: UnixSeqpacket[] = [];
      const loop = (async () => {
        for await (const c of listener) accepted.push(c);
      })();
      const c = await UnixSeqpacket.connect(path);
      // the loop has taken this connection and waits for the next one (not a fixed sleep: under
      // qemu-user the accept can take longer than any fixed delay)
      for (let i = 0; i < 1000 && accepted.length === 0; i++) await Bun.sleep(5);
      expect(accepted).toHaveLength(1);
      listener.close();
      await within(loop, 2000, "for await after close");
      expect(accepted).toHaveLength(1);
      accepted[0]!.close();
      c.close();
    });
  });

  test("sendFdsAll of 1 MiB to a slow reader: the event loop keeps ticking throughout", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixStream.pair();
      const fd = devNull();
      const payload = pattern(1024 * 1024, 77);
      let ticks = 0;
      let last = performance.now();
      let maxGap = 0;
      const iv = setInterval(() => {
        const now = performance.now();
        maxGap = Math.max(maxGap, now - last);
        last = now;
        ticks++;
      }, 2);
      const t0 = performance.now();
      let sendDone = -1;
      const send = a.sendFdsAll(payload, [fd]).then(() => (sendDone = performance.now()));
      const chunks: Uint8Array[] = [];
      let total = 0;
      let fds = 0;
      while (total < payload.byteLength) {
        await Bun.sleep(5); // slow reader
        const r = await within(b.recvFds(1, { bufferSize: 32 * 1024 }), 5000, "slow read");
        fds += r.fds.length;
        r[Symbol.dispose]();
        chunks.push(r.data);
        total += r.data.byteLength;
      }
      await within(send, 5000, "sendFdsAll");
      clearInterval(iv);
      const elapsed = performance.now() - t0;
      expect(fds).toBe(1);
      expect(Buffer.concat(chunks).equals(Buffer.from(payload))).toBe(true);
      expect(sendDone).toBeGreaterThan(t0);
      // ≥ 32 reads × 5 ms: the send had to wait for the reader, and the loop kept running meanwhile.
      expect(elapsed).toBeGreaterThan(100);
      expect(ticks).toBeGreaterThanOrEqual(10);
      // a blocked loop would show one gap ≈ the whole transfer; compared with the run's own length, not a clock budget
      expect(maxGap).toBeLessThan(elapsed / 2);
      closeSync(fd);
      a.close();
      b.close();
    });
  });
});

describe("connect", () => {
  test("UnixStream.connect with a pre-aborted signal rejects and opens nothing; to a missing path rejects with ENOENT", async () => {
    await expectNoFdLeak(async () => {
      await expectUaError(() => UnixStream.connect(`${dir}-none.sock`, { signal: AbortSignal.abort() }), "ERR_UA_ABORTED");
      const e = (await rejection(UnixStream.connect(`${dir}-none.sock`))) as { code?: string };
      expect(e.code).toBe("ENOENT");
    });
  });
});
