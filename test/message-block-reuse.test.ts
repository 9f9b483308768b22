/**
 * Reuse of the per-socket message blocks (MsgBlock send/receive blocks, staged SCM_RIGHTS header reused across
 * sends, receiveOne's >253 fallback, OwnedFd's pending-registration stack, UnixSocket's cached fd
 * number, the reactor's close hook rejecting the waits of a closed fd).
 *
 * Every received fd is checked by identity (the pipe inode /proc/self/fd names), not by count alone:
 * a stale slot in the reused control region would deliver the right number of wrong fds. Each test
 * counts open fds around its body.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { OwnedFd, UnixAncillaryError, UnixDatagram, UnixSeqpacket, UnixStream, SystemError, setPassCred } from "../src/index.ts";
import { abi, K } from "../src/platform/index.ts";

/** The most fds one message may carry here: 253 on glibc, 252 on musl (its sendmsg caps control data). */
const MAX = abi.maxFdsPerSend;
import * as sys from "../src/sys.ts";
import { reactorStats, shutdownReactor, waitFor } from "../src/async/reactor.ts";
import { fdTarget, fdSnapshot, newFdsSince, expectNoFdLeak } from "./helpers/fds.ts";
import { closeRaw, isOpen, pipeRaw, readRaw, setNonblocking, writeRaw } from "./fixtures/libc.ts";

// ---- helpers --------------------------------------------------------------------------------------

const enc = new TextEncoder();
const dec = new TextDecoder();
const text = (b: Uint8Array) => dec.decode(b);

/** 260 pipe read ends: 260 distinct inodes, so every slot of every message has its own identity. */
const POOL = 260;
let pool: number[] = [];
let ids: string[] = [];

beforeAll(() => {
  for (let i = 0; i < POOL; i++) {
    const [r, w] = pipeRaw();
    closeRaw(w);
    pool.push(r);
  }
  ids = pool.map((fd) => fdTarget(fd)!);
  expect(new Set(ids).size).toBe(POOL);
});

afterAll(async () => {
  for (const fd of pool) closeRaw(fd);
  pool = [];
  await shutdownReactor();
});

/** n distinct pool fds, rotated by k so consecutive messages of the same count carry different fds. */
function pick(k: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => pool[(k * 37 + i) % POOL]!);
}
const idsOf = (fds: readonly number[]) => fds.map((fd) => fdTarget(fd));
const receivedIds = (fds: readonly OwnedFd[]) => fds.map((f) => fdTarget(f.fd));

function catchErr(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("expected the call to throw");
}

function expectUa(f: () => unknown, code: string): void {
  const e = catchErr(f);
  if (!(e instanceof UnixAncillaryError)) throw new Error(`expected UnixAncillaryError ${code}, got ${String(e)}`);
  expect(e.code).toBe(code as never);
}

function expectSys(f: () => unknown, code: string): void {
  const e = catchErr(f);
  if (!(e instanceof SystemError)) throw new Error(`expected SystemError ${code}, got ${String(e)}`);
  expect(e.code).toBe(code);
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection");
}

/** "pending" if `p` has not settled within `ms` (a negative check, never a latency bound). */
async function stateAfter(p: Promise<unknown>, ms = 40): Promise<"resolved" | "rejected" | "pending"> {
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

/** A fresh closed OwnedFd (its number is never reused by the time it is passed: it throws first). */
function closedOwned(): OwnedFd {
  const [r, w] = pipeRaw();
  closeRaw(w);
  const o = OwnedFd.from(r);
  o.close();
  return o;
}

// ---- 1. alternating fd counts on one send block ---------------------------------------------------

type Api = "scalar" | "vectored" | "asyncScalar" | "asyncVectored";
/** count: a number of fds, "empty" (fds: []), "none" (fds undefined); fail: the list ends with a closed OwnedFd. */
interface Step {
  api: Api;
  count: number | "empty" | "none";
  fail?: boolean;
}

const PLAN: Step[] = [
  { api: "scalar", count: 1 },
  { api: "scalar", count: 3 },
  { api: "scalar", count: "empty" },
  { api: "vectored", count: 2 },
  { api: "scalar", count: MAX },
  { api: "scalar", count: 1 },
  { api: "scalar", count: "none" },
  { api: "vectored", count: 3 },
  { api: "scalar", count: 3 }, // same count as the vectored send: header not rewritten, slots must be
  { api: "scalar", count: 3, fail: true }, // throws after overwriting two slots of the staged 3-fd message
  { api: "scalar", count: 3 },
  { api: "scalar", count: 5, fail: true }, // overwrites slot 3 = the 3-fd message's padding word
  { api: "vectored", count: 3 },
  { api: "scalar", count: 3 },
  { api: "asyncScalar", count: 4 },
  { api: "vectored", count: 5 },
  { api: "vectored", count: "none" },
  { api: "vectored", count: "empty" },
  { api: "asyncVectored", count: MAX },
  { api: "vectored", count: 1 },
  { api: "scalar", count: 1 },
  { api: "scalar", count: 2 },
  { api: "scalar", count: 2 },
  { api: "asyncScalar", count: "empty" },
  { api: "scalar", count: 7 },
  { api: "vectored", count: 6, fail: true },
  { api: "asyncScalar", count: 6 },
  { api: "scalar", count: 0 },
  { api: "asyncVectored", count: 1 },
];

type Sock = UnixStream | UnixDatagram | UnixSeqpacket;

/** Sends one step; returns the fd identities it carried, or null for a step that must throw. */
async function sendStep(tx: Sock, step: Step, i: number): Promise<(string | null)[] | null> {
  const payload = `m${i}:${String(step.count)}`;
  const numbers = typeof step.count === "number" ? pick(i, step.count) : [];
  let fds: (number | OwnedFd)[] | undefined = step.count === "none" ? undefined : [...numbers];
  if (step.fail) {
    fds = [...numbers.slice(0, numbers.length - 1).map((n) => OwnedFd.from(n)), closedOwned()];
    // (OwnedFd.from on borrowed pool numbers: released again below, never closed)
  }
  const parts = [enc.encode(payload.slice(0, 2)), enc.encode(payload.slice(2))];
  try {
    switch (step.api) {
      case "scalar":
        expect(tx.sendFdsSync(payload, fds)).toBe(payload.length);
        break;
      case "vectored":
        expect(tx.sendFdsVectoredSync(parts, fds)).toBe(payload.length);
        break;
      case "asyncScalar":
        expect(await tx.sendFds(payload, fds)).toBe(payload.length);
        break;
      case "asyncVectored":
        expect(await tx.sendFdsVectored(parts, fds)).toBe(payload.length);
        break;
    }
    if (step.fail) throw new Error(`step ${i} should have thrown`);
    return idsOf(numbers);
  } catch (e) {
    if (!step.fail) throw e;
    expect(e).toBeInstanceOf(UnixAncillaryError);
    expect((e as UnixAncillaryError).code).toBe("ERR_UA_CLOSED");
    return null;
  } finally {
    if (step.fail) for (const f of fds as OwnedFd[]) if (!f.closed) f.release();
  }
}

describe("send block: consecutive sends with changing fd counts deliver exactly the fds sent", () => {
  const kinds: [string, () => [Sock, Sock], number][] = [
    ["stream", () => UnixStream.pair(), 1],
    ["datagram", () => UnixDatagram.pair(), 5],
    ["seqpacket", () => UnixSeqpacket.pair(), 5],
  ];
  for (const [name, make, batch] of kinds) {
    test(`${name}: ${PLAN.length} sends (scalar/vectored/async, 0–253 fds, [] and undefined, failed stagings in between)`, async () => {
      await expectNoFdLeak(async () => {
        const [tx, rx] = make();
        try {
          // send `batch` steps, then receive them (a datagram queue holds ~10 messages; a stream would
          // glue data-only sends to the next one, so it alternates)
          for (let start = 0; start < PLAN.length; start += batch) {
            const expected: { i: number; ids: (string | null)[] }[] = [];
            for (let i = start; i < Math.min(start + batch, PLAN.length); i++) {
              const got = await sendStep(tx, PLAN[i]!, i);
              if (got !== null) expected.push({ i, ids: got });
            }
            for (const { i, ids: want } of expected) {
              using r = rx.recvFdsSync(253, { bufferSize: 64 });
              expect(text(r.data)).toBe(`m${i}:${String(PLAN[i]!.count)}`);
              expect(receivedIds(r.fds)).toEqual(want);
            }
          }
          // nothing else was delivered (the failed stagings sent nothing)
          setNonblocking(rx.fd);
          expectSys(() => rx.recvFdsSync(253), "EAGAIN");
        } finally {
          tx.close();
          rx.close();
        }
      });
    });
  }
});

// ---- 2. scalar / vectored / send-all with partial writes on one stream ----------------------------

describe("stream: sendFdsAll's control-less tail (sendRange) between scalar and vectored sends", () => {
  test("fds are delivered exactly once each, with the first byte of their send; all bytes in order", async () => {
    await expectNoFdLeak(async () => {
      const [tx, rx] = UnixStream.pair();
      const big = new Uint8Array(1 << 20).map((_, i) => (i * 7 + (i >> 10)) & 0xff);
      const big2 = new Uint8Array(300_000).map((_, i) => (i * 13 + 5) & 0xff);
      const segments: { bytes: Uint8Array; ids: (string | null)[] }[] = [];
      const sender = (async () => {
        let k = 100;
        const send1 = async (bytes: Uint8Array, n: number | null, how: "scalar" | "vectored" | "all" | "allSync") => {
          const fds = n === null ? undefined : pick(k++, n);
          if (how === "all") await tx.sendFdsAll(bytes, fds);
          else if (how === "allSync") tx.sendFdsAllSync(bytes, fds); // small enough never to block
          else if (how === "vectored") {
            const sent = await tx.sendFdsVectored([bytes.subarray(0, 1), bytes.subarray(1)], fds);
            bytes = bytes.subarray(0, sent);
          } else {
            const sent = await tx.sendFds(bytes, fds);
            bytes = bytes.subarray(0, sent); // one sendmsg: may be partial
          }
          segments.push({ bytes, ids: idsOf(fds ?? []) });
        };
        await send1(enc.encode("A"), 1, "scalar");
        await send1(big, 3, "all"); // first sendmsg carries the fds, the rest goes through sendRange
        await send1(big, 1, "scalar"); // same buffer right after sendRange pointed the block into it
        await send1(enc.encode("vec"), 2, "vectored");
        await send1(big2, null, "all"); // no fds: everything through sendRange
        await send1(enc.encode("B"), 2, "scalar"); // same count as the vectored one
        await send1(big2, MAX, "all");
        await send1(enc.encode("tail"), 1, "allSync");
        await send1(enc.encode("C"), 3, "scalar");
        tx.shutdown("write");
      })();
      const chunks = [new Uint8Array(65536), new Uint8Array(65536), new Uint8Array(200_000).subarray(4096, 4096 + 65536)];
      const received: Uint8Array[] = [];
      const fdEvents: { at: number; end: number; ids: (string | null)[] }[] = [];
      let got = 0;
      for (let j = 0; ; j++) {
        const chunk = chunks[j % chunks.length]!;
        const r = await rx.recvFdsInto(253, chunk);
        if (r.bytesRead === 0 && r.fds.length === 0) break;
        received.push(chunk.slice(0, r.bytesRead));
        if (r.fds.length > 0) fdEvents.push({ at: got, end: got + r.bytesRead, ids: receivedIds(r.fds) });
        got += r.bytesRead;
        for (const f of r.fds) f.close();
      }
      await sender;
      expect(segments[2]!.bytes.byteLength).toBeLessThan(big.byteLength); // precondition: one sendmsg of 1 MiB is partial here
      const all = Buffer.concat(received);
      const want = Buffer.concat(segments.map((s) => s.bytes));
      expect(all.length).toBe(want.length);
      expect(all.equals(want)).toBe(true);
      // every send's fds arrive once, in one receive whose bytes include the send's first byte
      let offset = 0;
      const expectedEvents: { at: number; ids: (string | null)[] }[] = [];
      for (const s of segments) {
        if (s.ids.length > 0) expectedEvents.push({ at: offset, ids: s.ids });
        offset += s.bytes.byteLength;
      }
      expect(fdEvents.flatMap((e) => e.ids)).toEqual(expectedEvents.flatMap((e) => e.ids));
      expect(fdEvents.length).toBe(expectedEvents.length);
      fdEvents.forEach((e, n) => {
        expect(e.ids).toEqual(expectedEvents[n]!.ids);
        expect(e.at <= expectedEvents[n]!.at && expectedEvents[n]!.at < e.end).toBe(true);
      });
      tx.close();
      rx.close();
    });
  });
});

// ---- 3. receive APIs mixed on one socket ----------------------------------------------------------

describe("receive block and its >253 fallback, mixed on one socket", () => {
  test("recvFdsInto/Vectored/Sync/Exact with maxFds 0, 1, 2, 253, 300, 1000 plus EAGAIN, count mismatch, truncation and a closed socket", async () => {
    await expectNoFdLeak(() => {
      const [tx, rx] = UnixSeqpacket.pair();
      const buf = new Uint8Array(32);
      let k = 500;
      const send = (data: string, n: number): (string | null)[] => {
        const fds = pick(k++, n);
        tx.sendFdsSync(data, fds);
        return idsOf(fds);
      };
      try {
        // maxFds 0 on the block: surplus closed
        send("zero", 2);
        let r = rx.recvFdsIntoSync(0, buf);
        expect(text(buf.subarray(0, r.bytesRead))).toBe("zero");
        expect(r.fds).toEqual([]);
        // vectored (general iovec path), maxFds 1 of 3
        let want = send("vector", 3);
        const v1 = new Uint8Array(2);
        const v2 = new Uint8Array(30);
        r = rx.recvFdsVectoredSync(1, [v1, v2]);
        expect(r.bytesRead).toBe(6);
        expect(text(v1) + text(v2.subarray(0, 4))).toBe("vector");
        expect(receivedIds(r.fds)).toEqual(want.slice(0, 1));
        r[Symbol.dispose]();
        // the whole budget on the block
        want = send("budget", MAX);
        let a = rx.recvFdsSync(253);
        expect(text(a.data)).toBe("budget");
        expect(receivedIds(a.fds)).toEqual(want);
        a[Symbol.dispose]();
        // exact on the block: match, then mismatch (all closed, error)
        want = send("exact2", 2);
        a = rx.recvFdsExactSync(2);
        expect(receivedIds(a.fds)).toEqual(want);
        a[Symbol.dispose]();
        send("exact3", 3);
        expectUa(() => rx.recvFdsExactSync(2), "ERR_UA_FD_COUNT_MISMATCH");
        // the >253 fallback: into, allocating, exact-into (mismatch)
        want = send("fallback5", 5);
        r = rx.recvFdsIntoSync(300, buf);
        expect(text(buf.subarray(0, r.bytesRead))).toBe("fallback5");
        expect(receivedIds(r.fds)).toEqual(want);
        r[Symbol.dispose]();
        want = send("fallbackMax", MAX);
        a = rx.recvFdsSync(1000);
        expect(text(a.data)).toBe("fallbackMax");
        expect(receivedIds(a.fds)).toEqual(want);
        a[Symbol.dispose]();
        send("fbexact", MAX);
        expectUa(() => rx.recvFdsExactIntoSync(254, buf), "ERR_UA_FD_COUNT_MISMATCH");
        // back on the block right after the fallback, same buffer
        want = send("block1", 1);
        r = rx.recvFdsIntoSync(1, buf);
        expect(text(buf.subarray(0, r.bytesRead))).toBe("block1");
        expect(receivedIds(r.fds)).toEqual(want);
        r[Symbol.dispose]();
        // a failing recvmsg (EAGAIN) on the block and on the fallback leaves both usable
        setNonblocking(rx.fd);
        expectSys(() => rx.recvFdsIntoSync(1, buf), "EAGAIN");
        expectSys(() => rx.recvFdsIntoSync(400, buf), "EAGAIN");
        expectSys(() => rx.recvFdsExactSync(0), "EAGAIN");
        want = send("after-eagain", 4);
        r = rx.recvFdsIntoSync(4, buf);
        expect(text(buf.subarray(0, r.bytesRead))).toBe("after-eagain");
        expect(receivedIds(r.fds)).toEqual(want);
        r[Symbol.dispose]();
        // datagram truncation on the block: the record's fds are closed, the next record is intact
        send("x".repeat(40), 2);
        expectUa(() => rx.recvFdsIntoSync(253, buf), "ERR_UA_DATAGRAM_TRUNCATED");
        want = send("short", 1);
        r = rx.recvFdsIntoSync(253, buf);
        expect(text(buf.subarray(0, r.bytesRead))).toBe("short");
        expect(receivedIds(r.fds)).toEqual(want);
        r[Symbol.dispose]();
        // a closed socket throws before any syscall; another socket's receive then still works
        rx.close();
        expectUa(() => rx.recvFdsIntoSync(1, buf), "ERR_UA_CLOSED");
        expectUa(() => rx.recvFdsSync(300), "ERR_UA_CLOSED");
        const [tx2, rx2] = UnixDatagram.pair();
        try {
          const fds = pick(k++, 3);
          tx2.sendFdsSync("other", fds);
          r = rx2.recvFdsIntoSync(3, buf);
          expect(text(buf.subarray(0, r.bytesRead))).toBe("other");
          expect(receivedIds(r.fds)).toEqual(idsOf(fds));
          r[Symbol.dispose]();
        } finally {
          tx2.close();
          rx2.close();
        }
      } finally {
        tx.close();
        rx.close();
      }
    });
  });

  test("SO_PASSCRED: credentials + rights in the block's control region (the general walker) keep fd identity and order", async () => {
    await expectNoFdLeak(() => {
      for (const make of [() => UnixStream.pair(), () => UnixDatagram.pair()] as (() => [Sock, Sock])[]) {
        const [tx, rx] = make();
        try {
          setPassCred(rx, true);
          for (const [n, max] of [
            [3, 3],
            [MAX, 253],
            [1, 1],
            [5, 300],
            [2, 2],
          ] as const) {
            const fds = pick(n + max, n);
            tx.sendFdsSync("c", fds);
            using r = rx.recvFdsSync(max);
            expect(text(r.data)).toBe("c");
            expect(receivedIds(r.fds)).toEqual(idsOf(fds));
          }
        } finally {
          tx.close();
          rx.close();
        }
      }
    });
  });
});

// ---- 4. the iovec cache ---------------------------------------------------------------------------

describe("receive/send block iovec cache: buffer identity, offsets, detached and resized buffers", () => {
  test("same buffer, same-length other buffer, subarrays of one ArrayBuffer, zero-length buffer", async () => {
    await expectNoFdLeak(() => {
      const [tx, rx] = UnixDatagram.pair();
      try {
        const store = new Uint8Array(96).fill(0xee);
        const a = store.subarray(0, 16);
        const b = store.subarray(16, 32);
        const c = store.subarray(48, 64);
        const other = new Uint8Array(16);
        const plan: [Uint8Array, string][] = [
          [a, "first-a"],
          [a, "second-a"],
          [a, "third-a"],
          [other, "other"],
          [a, "a-again"],
          [b, "b-at-16"],
          [c, "c-at-48"],
          [b, "b-again"],
          [a, "a-last"],
        ];
        for (const [target, msg] of plan) {
          const before = Uint8Array.from(store);
          const fds = pick(msg.length, 1);
          tx.sendFdsSync(msg, fds);
          using r = rx.recvFdsIntoSync(1, target);
          expect(r.bytesRead).toBe(msg.length);
          expect(text(target.subarray(0, r.bytesRead))).toBe(msg);
          expect(receivedIds(r.fds)).toEqual(idsOf(fds));
          // nothing outside the target changed
          if (target !== other) {
            const lo = target.byteOffset;
            const hi = lo + msg.length;
            for (let i = 0; i < store.length; i++) if (i < lo || i >= hi) expect(store[i]).toBe(before[i]!);
          }
        }
        // zero-length buffer: a 0-byte record with fds fits; a non-empty one is a truncation (fds closed)
        const empty = new Uint8Array(0);
        for (let rep = 0; rep < 2; rep++) {
          const fds = pick(rep, 2);
          tx.sendFdsSync(new Uint8Array(0), fds);
          using r = rx.recvFdsIntoSync(2, empty);
          expect(r.bytesRead).toBe(0);
          expect(receivedIds(r.fds)).toEqual(idsOf(fds));
        }
        tx.sendFdsSync("nonempty", pick(7, 2));
        expectUa(() => rx.recvFdsIntoSync(2, empty), "ERR_UA_DATAGRAM_TRUNCATED");
        // and the cached buffer is used correctly again afterwards
        tx.sendFdsSync("back", []);
        using r = rx.recvFdsIntoSync(0, a);
        expect(text(a.subarray(0, r.bytesRead))).toBe("back");
      } finally {
        tx.close();
        rx.close();
      }
    });
  });

  test("a receive buffer whose ArrayBuffer was transferred away: no byte lands in the new owner's memory", async () => {
    await expectNoFdLeak(() => {
      const [tx, rx] = UnixDatagram.pair();
      try {
        const u = new Uint8Array(64);
        for (let i = 0; i < 3; i++) {
          tx.sendFdsSync(`warm${i}`, []);
          expect(rx.recvFdsIntoSync(0, u).bytesRead).toBe(5);
        }
        const moved = (u.buffer as ArrayBuffer).transfer(); // u is detached; `moved` may reuse its storage
        expect(u.byteLength).toBe(0);
        const view = new Uint8Array(moved);
        view.fill(0x5a);
        tx.sendFdsSync("after-transfer", pick(9, 2));
        // a 0-byte target: the record does not fit (its fds are closed), or it throws a clear error
        const e = catchErr(() => rx.recvFdsIntoSync(2, u));
        expect(e).toBeInstanceOf(Error);
        expect(view.every((x) => x === 0x5a)).toBe(true);
        // the new owner works as a receive buffer
        const fds = pick(10, 2);
        tx.sendFdsSync("into-moved", fds);
        using r = rx.recvFdsIntoSync(2, view);
        expect(text(view.subarray(0, r.bytesRead))).toBe("into-moved");
        expect(receivedIds(r.fds)).toEqual(idsOf(fds));
      } finally {
        tx.close();
        rx.close();
      }
    });
  });

  // Skipped under qemu-user like the length-tracking test below (a resizable ArrayBuffer aborts Bun there).
  test.skipIf(process.env.UA_EMULATED === "1")("views over a resizable ArrayBuffer that shrinks and grows between receives: bytes land where the view is now (skipped under qemu-user)", async () => {
    await expectNoFdLeak(() => {
      const [tx, rx] = UnixDatagram.pair();
      try {
        const rab = new ArrayBuffer(64, { maxByteLength: 256 });
        const whole = new Uint8Array(rab); // length-tracking
        const fixed = new Uint8Array(rab, 16, 8); // fixed length at offset 16
        const recvInto = (target: Uint8Array, msg: string) => {
          const fds = pick(msg.length, 1);
          tx.sendFdsSync(msg, fds);
          using r = rx.recvFdsIntoSync(1, target);
          expect(receivedIds(r.fds)).toEqual(idsOf(fds));
          return r.bytesRead;
        };
        for (let i = 0; i < 3; i++) expect(recvInto(whole, `w${i}`)).toBe(2); // remembered
        for (let i = 0; i < 3; i++) expect(recvInto(fixed, `f${i}`)).toBe(2);
        const raw = () => new Uint8Array(rab);
        // shrink so the fixed view is out of bounds (length 0), then grow back to the same size
        rab.resize(8);
        expect(fixed.byteLength).toBe(0);
        expect(catchErr(() => recvInto(fixed, "oob"))).toBeInstanceOf(Error); // 0-byte target: truncated
        rab.resize(64);
        raw().fill(0x33);
        expect(recvInto(fixed, "back-16")).toBe(7);
        expect(text(raw().subarray(16, 23))).toBe("back-16");
        expect(raw()[15]).toBe(0x33);
        expect(raw()[23]).toBe(0x33);
        // the length-tracking view follows the buffer's length
        rab.resize(4);
        expect(recvInto(whole, "abcd")).toBe(4);
        rab.resize(200);
        raw().fill(0x44);
        expect(recvInto(whole, "x".repeat(150))).toBe(150);
        expect(raw().subarray(0, 150).every((x) => x === 0x78)).toBe(true);
        expect(raw()[150]).toBe(0x44);
      } finally {
        tx.close();
        rx.close();
      }
    });
  });

  // WebAssembly.Memory#toResizableBuffer(): grow() moves the storage under an attached view of the same
  // length (with fast memories off: deterministic). A remembered pointer would receive into freed
  // memory and send stale bytes. Child process: the JSC option is process-wide.
  test.skipIf(process.env.UA_EMULATED === "1")("a view over wasm memory that moves on grow(): receives and sends use the view's current storage (skipped under qemu-user)", () => {
    const r = Bun.spawnSync([process.execPath, join(import.meta.dir, "fixtures", "wasm-moving-buffer.ts")], {
      env: { ...process.env, BUN_JSC_useWasmFastMemory: "0" },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(r.stderr.toString()).toBe("");
    expect(JSON.parse(r.stdout.toString().trim())).toEqual({ recvMoved: true, received: "RECEIVED", sendMoved: true, sent: "NEWBYTES" });
  });

  test("a send buffer whose ArrayBuffer was transferred away sends nothing stale", async () => {
    await expectNoFdLeak(() => {
      const [tx, rx] = UnixDatagram.pair();
      try {
        const u = enc.encode("stale-content");
        const out = new Uint8Array(64);
        for (let i = 0; i < 3; i++) {
          tx.sendFdsSync(u, []);
          using r = rx.recvFdsIntoSync(0, out);
          expect(text(out.subarray(0, r.bytesRead))).toBe("stale-content");
        }
        const moved = new Uint8Array((u.buffer as ArrayBuffer).transfer());
        expect(u.byteLength).toBe(0);
        moved.fill(0x41);
        const fds = pick(11, 1);
        expect(tx.sendFdsSync(u, fds)).toBe(0); // an empty datagram: 0 bytes, the fd still travels
        using r = rx.recvFdsIntoSync(1, out);
        expect(r.bytesRead).toBe(0);
        expect(receivedIds(r.fds)).toEqual(idsOf(fds));
      } finally {
        tx.close();
        rx.close();
      }
    });
  });

  // Under qemu-user (the arm64 CI runs) creating a resizable ArrayBuffer aborts Bun itself ("mprotect
  // failed: Cannot allocate memory"), as in ownership-edge-cases.test.ts.
  test.skipIf(process.env.UA_EMULATED === "1")("a length-tracking view on a resizable ArrayBuffer: each receive uses the current length (skipped under qemu-user: JSC cannot reserve resizable buffers there)", async () => {
    await expectNoFdLeak(() => {
      const [tx, rx] = UnixStream.pair();
      try {
        const rab = new ArrayBuffer(8, { maxByteLength: 4096 });
        const u = new Uint8Array(rab);
        for (let i = 0; i < 3; i++) {
          tx.sendFdsSync("12345678", []);
          expect(rx.recvFdsIntoSync(0, u).bytesRead).toBe(8);
        }
        rab.resize(4);
        tx.sendFdsSync("abcdefghij", pick(12, 1));
        let r = rx.recvFdsIntoSync(1, u);
        expect(r.bytesRead).toBe(4); // not 8: the shrunken length is the limit
        expect(text(u)).toBe("abcd");
        r[Symbol.dispose]();
        rab.resize(64);
        r = rx.recvFdsIntoSync(1, u);
        expect(text(u.subarray(0, r.bytesRead))).toBe("efghij");
        expect(r.fds).toEqual([]);
      } finally {
        tx.close();
        rx.close();
      }
    });
  });
});

// ---- 5. OwnedFd pending stack vs the leak net (child process) -------------------------------------

describe("OwnedFd pending stack and the FinalizationRegistry net", () => {
  test("1,000+ received OwnedFds closed in forward/reverse/random order, released, kept across a turn, dropped: no double close, no leak", async () => {
    const env = { ...process.env };
    delete env.UNIX_ANCILLARY_DEBUG;
    const child = Bun.spawn([process.execPath, join(import.meta.dir, "fixtures", "leak-net-gc-stack.ts")], {
      env,
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = setTimeout(() => child.kill(), 10_000);
    const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    clearTimeout(timer);
    if (code !== 0) throw new Error(`child failed (${code}): ${err}\n${out}`);
    const report = JSON.parse(out.trim().split("\n").pop()!);
    expect(report.created).toBeGreaterThanOrEqual(1000);
    expect(report.sentinelsCoverClosed).toBe(true); // precondition: every closed number was reused
    expect(report.closedNowSentinel).toBeGreaterThan(50);
    expect(report.sentinelsClosed).toEqual([]); // nothing closed twice
    expect(report.releasedClosed).toEqual([]); // released numbers belong to the caller
    expect(report.aliveClosed).toEqual([]); // live OwnedFds are not the net's business
    expect(report.closedStillOpen).toEqual([]);
    expect(report.leakedStillOpen).toEqual([]); // the net closed every dropped one
    expect(err).not.toContain("garbage-collected");
  });
});

// ---- 6. reactor close hook ------------------------------------------------------------------------

describe("reactor close hook: a library close rejects that fd's waits", () => {
  test("OwnedFd.close rejects a pending wait across empty→registered→empty transitions; reused numbers work", async () => {
    await shutdownReactor(); // no registrations
    expect(reactorStats().registered).toBe(0);
    const ownedPair = (): [OwnedFd, OwnedFd] => {
      const [x, y] = sys.socketpair(K.SOCK_STREAM);
      return [OwnedFd.from(x), OwnedFd.from(y)];
    };
    const baseline = fdSnapshot();
    // (a) the first registration installs the hook: closing the OwnedFd (no explicit forget) rejects
    const [a1, a2] = ownedPair();
    const num = a1.fd;
    const w1 = waitFor(num, "readable");
    expect(await stateAfter(w1)).toBe("pending");
    a1.close();
    expect(await stateAfter(w1, 1000)).toBe("rejected"); // (a missing hook leaves it pending forever)
    expect(((await rejection(w1)) as UnixAncillaryError).code).toBe("ERR_UA_CLOSED");
    expect(reactorStats().registered).toBe(0);
    // (b) idle: closes do not throw
    a2.close();
    closedOwned().close();
    // (c) a reused number: wait, resolve (registration stays idle), abort a wait on another fd (its
    // registration is dropped while this one remains), then close by OwnedFd while waiting again
    let [b1, b2] = ownedPair();
    if (b1.fd !== num && b2.fd !== num && !sys.isOpen(num)) {
      // something else freed a lower number meanwhile: move b1 onto `num` (F_DUPFD never replaces an open fd)
      const moved = sys.fcntl(b1.fd, K.F_DUPFD_CLOEXEC, num);
      const old = b1;
      b1 = OwnedFd.from(moved);
      old.close();
    }
    const reused = b1.fd === num ? b1 : b2.fd === num ? b2 : null;
    expect(reused).not.toBeNull(); // precondition
    const peer = reused === b1 ? b2 : b1;
    const [s1, s2] = UnixStream.pair();
    s1.close(); // idle close (no registration yet)
    const w2 = waitFor(num, "readable");
    expect(await stateAfter(w2)).toBe("pending");
    expect(writeRaw(peer.fd, "1")).toBe(1);
    await w2;
    const ac = new AbortController();
    const wOther = waitFor(s2.fd, "readable", ac.signal);
    expect(reactorStats().registered).toBe(2);
    ac.abort();
    await rejection(wOther);
    expect(reactorStats().registered).toBe(1);
    // drain the byte so "readable" is pending again
    expect(readRaw(reused!.fd, 16)).toBe(1);
    const w3 = waitFor(num, "readable");
    expect(await stateAfter(w3)).toBe("pending");
    reused!.close();
    expect(await stateAfter(w3, 1000)).toBe("rejected"); // (a missing hook leaves it pending forever)
    expect(((await rejection(w3)) as UnixAncillaryError).code).toBe("ERR_UA_CLOSED");
    expect(reactorStats().registered).toBe(0);
    peer.close();
    s2.close();
    // (d) after failAll (shutdown) the hook comes back with the next registration
    const [c1, c2] = UnixStream.pair();
    const pending = c1.recvFds(0);
    expect(await stateAfter(pending, 60)).toBe("pending");
    await shutdownReactor();
    expect(((await rejection(pending)) as UnixAncillaryError).code).toBe("ERR_UA_CLOSED");
    const [d1, d2] = ownedPair();
    const w4 = waitFor(d1.fd, "readable");
    expect(await stateAfter(w4)).toBe("pending");
    d1.close();
    expect(await stateAfter(w4, 1000)).toBe("rejected"); // (a missing hook leaves it pending forever)
    expect(((await rejection(w4)) as UnixAncillaryError).code).toBe("ERR_UA_CLOSED");
    d2.close();
    // (e) a socket closed while its async receive waits still rejects, and the number works afterwards
    const w5 = c1.recvFds(1);
    expect(await stateAfter(w5, 60)).toBe("pending");
    const cNum = c1.fd;
    c1.close();
    expect(((await rejection(w5)) as UnixAncillaryError).code).toBe("ERR_UA_CLOSED");
    c2.close();
    const [e1, e2] = UnixStream.pair();
    const rx = e1.fd === cNum ? e1 : e2;
    const tx = rx === e1 ? e2 : e1;
    const w6 = rx.recvFds(1);
    expect(await stateAfter(w6, 60)).toBe("pending");
    const fds = pick(3, 1);
    tx.sendFdsSync("late", fds);
    const got = await w6;
    expect(text(got.data)).toBe("late");
    expect(receivedIds(got.fds)).toEqual(idsOf(fds));
    got[Symbol.dispose]();
    e1.close();
    e2.close();
    expect(newFdsSince(baseline).filter((s) => s.includes("=socket:"))).toEqual([]);
  });
});

// ---- 7. UnixSocket's cached fd number vs the OwnedFd it took ---------------------------------------

describe("UnixSocket.fromFd: the socket and the OwnedFd it took agree on whether the fd is open", () => {
  test("after the taken OwnedFd is closed, the socket reports closed and never sends through the (reused) number", () => {
    const [x, y] = sys.socketpair(K.SOCK_STREAM);
    const peer = OwnedFd.from(x);
    const owned = OwnedFd.from(y);
    const s = UnixStream.fromFd(owned);
    owned.close(); // e.g. the end of a `using owned = ...` scope that created the socket
    const [c, d] = UnixStream.pair(); // takes the freed number
    try {
      expect(c.fd === y || d.fd === y).toBe(true); // precondition: the number was reused
      expect(s.closed).toBe(true);
      expectUa(() => s.fd, "ERR_UA_CLOSED");
      expectUa(() => s.sendFdsSync("stray"), "ERR_UA_CLOSED");
    } finally {
      // whatever happened above, nothing reached the unrelated pair
      const other = c.fd === y ? d : c;
      setNonblocking(other.fd);
      expectSys(() => other.recvFdsSync(0), "EAGAIN");
      s.close();
      c.close();
      d.close();
      peer.close();
    }
  });

  test("closing such a socket does not cancel the pending wait of the unrelated socket that reused its number", async () => {
    const [x, y] = sys.socketpair(K.SOCK_STREAM);
    const peer = OwnedFd.from(x);
    const s = (() => {
      using owned = OwnedFd.from(y);
      return UnixStream.fromFd(owned);
    })(); // `using` closed the OwnedFd the socket took
    const [c, d] = UnixStream.pair();
    const reused = c.fd === y ? c : d.fd === y ? d : null;
    expect(reused).not.toBeNull(); // precondition
    const other = reused === c ? d : c;
    try {
      const w = reused!.recvFds(0);
      expect(await stateAfter(w, 60)).toBe("pending"); // waiting in the reactor
      s.close();
      expect(await stateAfter(w, 60)).toBe("pending"); // not rejected with ERR_UA_CLOSED
      other.sendFdsSync("hello");
      const got = await w;
      expect(text(got.data)).toBe("hello");
    } finally {
      s.close();
      c.close();
      d.close();
      peer.close();
      expect(isOpen(y)).toBe(false);
    }
  });

  test("releasing the taken OwnedFd rejects the socket's pending wait (ERR_UA_CLOSED) and drops its registration, so a socket that reuses the number still wakes", async () => {
    const [x, y] = sys.socketpair(K.SOCK_STREAM);
    const peer = OwnedFd.from(x);
    const owned = OwnedFd.from(y);
    const s = UnixStream.fromFd(owned);
    const w = s.recvFds(0);
    expect(await stateAfter(w, 60)).toBe("pending"); // registered with the reactor
    const registered = reactorStats().registered;
    expect(owned.release()).toBe(y);
    expect(reactorStats().registered).toBe(registered - 1);
    expect(await w.then(() => "resolved", (e) => (e instanceof UnixAncillaryError ? e.code : String(e)))).toBe("ERR_UA_CLOSED");
    expect(s.closed).toBe(true);
    closeRaw(y); // the caller owns the number now
    const [c, d] = UnixStream.pair();
    const reused = c.fd === y ? c : d.fd === y ? d : null;
    expect(reused).not.toBeNull(); // precondition
    const other = reused === c ? d : c;
    try {
      const w2 = reused!.recvFds(0);
      expect(await stateAfter(w2, 60)).toBe("pending");
      other.sendFdsSync("after-release");
      expect(text((await w2).data)).toBe("after-release");
    } finally {
      s.close();
      c.close();
      d.close();
      peer.close();
    }
  });
});
