/**
 * fd-leak tests of the high-level receive pipeline (the Rust crate's tests plus truncation and limits): every
 * fd a receive does not hand back — surplus, count mismatch, MSG_CTRUNC, datagram MSG_TRUNC, maxFds 0 —
 * is closed before the call returns or throws, and sends over the per-message limit never reach the
 * kernel. Each test counts open fds (test/helpers/fds.ts).
 */
import { describe, expect, test } from "bun:test";
import { ReceivedFds, ReceivedInto, UnixDatagram, UnixSeqpacket, UnixStream } from "../src/socket.ts";
import { OwnedFd } from "../src/owned-fd.ts";
import { MESSAGES, SystemError, UnixAncillaryError } from "../src/errors.ts";
import { abi } from "../src/platform/index.ts";
import { openFds, fdTarget, fdSnapshot, expectNewFds, expectNoNewFds } from "./helpers/fds.ts";
import { closeRaw, dupRaw, getNofile, hasCloexec, isOpen, openRaw, pipeRaw, readRaw, setNofile, setNonblocking } from "./fixtures/libc.ts";

function devNull(): OwnedFd {
  return OwnedFd.from(openRaw("/dev/null"));
}

function catchErr(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("expected the call to throw");
}

function expectUa(f: () => unknown, code: string): UnixAncillaryError {
  const e = catchErr(f);
  if (!(e instanceof UnixAncillaryError)) throw new Error(`expected UnixAncillaryError ${code}, got ${e}`);
  expect(e.code).toBe(code as never);
  return e;
}

function expectEagain(f: () => unknown): void {
  const e = catchErr(f);
  if (!(e instanceof SystemError)) throw new Error(`expected SystemError EAGAIN, got ${e}`);
  expect(e.code).toBe("EAGAIN");
}

describe("fd_leak (Rust crate parity)", () => {
  test("1. surplus_fds_dropped_not_leaked: count rises by exactly 1", () => {
    const baseline = fdSnapshot();
    const [tx, rx] = UnixStream.pair();
    const files = [devNull(), devNull(), devNull()];
    expect(tx.sendFdsSync("trunc", files)).toBe(5);
    const before = fdSnapshot();
    const got = rx.recvFdsSync(1);
    expectNewFds(before, 1);
    expect(got.fds.length).toBe(1);
    expect(new TextDecoder().decode(got.data)).toBe("trunc");
    expect(fdTarget(got.fds[0]!.fd)).toBe("/dev/null");
    got[Symbol.dispose]();
    files.forEach((f) => f.close());
    tx.close();
    rx.close();
    expectNoNewFds(baseline);
  });

  test("2. exact_receive_error_closes_all_received_fds: back to the baseline taken before the pair", () => {
    const baseline = fdSnapshot();
    const [tx, rx] = UnixStream.pair();
    const files = [devNull(), devNull(), devNull()];
    tx.sendFdsSync("x", files);
    const before = fdSnapshot();
    const e = expectUa(() => rx.recvFdsExactSync(1), "ERR_UA_FD_COUNT_MISMATCH");
    expect(e.kind).toBe("InvalidData");
    expect(e.message).toBe("expected exactly 1 file descriptor, received 3");
    expectNoNewFds(before);
    files.forEach((f) => f.close());
    tx.close();
    rx.close();
    expectNoNewFds(baseline);
  });

  test("exact mismatch in the other direction (too few) and the _into variant also close all", () => {
    const baseline = fdSnapshot();
    const [tx, rx] = UnixStream.pair();
    const file = devNull();
    tx.sendFdsSync("x", [file, file]);
    const before = fdSnapshot();
    const e = expectUa(() => rx.recvFdsExactIntoSync(3, new Uint8Array(8)), "ERR_UA_FD_COUNT_MISMATCH");
    expect(e.message).toBe(MESSAGES.exactCount(3, 2));
    expectNoNewFds(before);
    tx.sendFdsSync("y", [file, file, file, file]);
    expectUa(() => rx.recvFdsExactIntoSync(2, new Uint8Array(8)), "ERR_UA_FD_COUNT_MISMATCH");
    expectNoNewFds(before);
    file.close();
    tx.close();
    rx.close();
    expectNoNewFds(baseline);
  });
});

describe("truncation closes everything", () => {
  test("MSG_CTRUNC (fd table nearly full) → ERR_UA_ANCILLARY_TRUNCATED, all fds closed", () => {
    const baseline = fdSnapshot();
    const [tx, rx] = UnixStream.pair();
    // Ten copies of a pipe's write end: once every copy is closed, the read end sees EOF — proof that the
    // library closed what arrived and the kernel dropped what did not fit.
    const [pr, pw] = pipeRaw();
    setNonblocking(pr);
    expect(tx.sendFdsSync("x", Array(10).fill(pw))).toBe(1);
    closeRaw(pw);
    expect(readRaw(pr, 1)).toBe(-11); // EAGAIN: the in-flight copies keep the pipe open

    // Leave exactly 2 free fd numbers below the new soft limit.
    const used = openFds();
    const limit = Math.max(...used) + 1 + 2;
    const fillers: number[] = [];
    for (;;) {
      const inUse = new Set([...used, ...fillers]);
      let free = 0;
      for (let i = 0; i < limit; i++) if (!inUse.has(i)) free++;
      if (free <= 2) break;
      fillers.push(dupRaw(0)); // dup takes the lowest free number: fills holes first
    }
    const [soft, hard] = getNofile();
    let err: unknown;
    let recvReturned: ReceivedFds | undefined;
    // The kernel installs 2 fds (the free slots) and sets MSG_CTRUNC; the library must close both before
    // it throws: the open-fd set after the receive equals the set before it.
    const beforeRecv = fdSnapshot();
    try {
      setNofile(BigInt(limit), hard);
      try {
        recvReturned = rx.recvFdsSync(10);
      } catch (e) {
        err = e;
      }
    } finally {
      setNofile(soft, hard);
    }
    expectNoNewFds(beforeRecv);
    expect(getNofile()[0]).toBe(soft);
    fillers.forEach(closeRaw);
    if (recvReturned) recvReturned[Symbol.dispose]();
    expect(err).toBeInstanceOf(UnixAncillaryError);
    expect((err as UnixAncillaryError).code).toBe("ERR_UA_ANCILLARY_TRUNCATED");
    expect((err as UnixAncillaryError).kind).toBe("InvalidData");
    expect((err as UnixAncillaryError).message).toBe(MESSAGES.ancillaryTruncated);
    expect(readRaw(pr, 1)).toBe(0); // EOF: no copy of the write end is open anywhere
    closeRaw(pr);
    tx.close();
    rx.close();
    expectNoNewFds(baseline);
  });

  test("datagram MSG_TRUNC → ERR_UA_DATAGRAM_TRUNCATED, fds closed (into and allocating variants)", () => {
    const baseline = fdSnapshot();
    const [tx, rx] = UnixDatagram.pair();
    const file = devNull();
    const payload = "abcdefghijklmnopqrstuvwxyz"; // 26 bytes
    tx.sendFdsSync(payload, [file, file]);
    const before = fdSnapshot();
    const e = expectUa(() => rx.recvFdsIntoSync(2, new Uint8Array(4)), "ERR_UA_DATAGRAM_TRUNCATED");
    expect(e.kind).toBe("InvalidData");
    expect(e.message).toBe(MESSAGES.datagramTruncated);
    expectNoNewFds(before);
    tx.sendFdsSync(payload, [file, file]);
    expectUa(() => rx.recvFdsSync(2, { bufferSize: 4 }), "ERR_UA_DATAGRAM_TRUNCATED");
    expectNoNewFds(before);
    tx.sendFdsSync(payload, [file]);
    expectUa(() => rx.recvFdsExactSync(1, { bufferSize: 25 }), "ERR_UA_DATAGRAM_TRUNCATED");
    expectNoNewFds(before);
    // crate 5.5.13: recv_fds_into::<0> with a 4-byte buffer, no fds at all
    tx.sendFdsSync(payload, []);
    expectUa(() => rx.recvFdsIntoSync(0, new Uint8Array(4)), "ERR_UA_DATAGRAM_TRUNCATED");
    file.close();
    tx.close();
    rx.close();
    expectNoNewFds(baseline);
  });

  test("seqpacket MSG_TRUNC is an error too; a stream ignores MSG_TRUNC", () => {
    const baseline = fdSnapshot();
    const file = devNull();
    {
      const [tx, rx] = UnixSeqpacket.pair();
      tx.sendFdsSync("0123456789", [file]);
      const before = fdSnapshot();
      expectUa(() => rx.recvFdsIntoSync(1, new Uint8Array(3)), "ERR_UA_DATAGRAM_TRUNCATED");
      expectNoNewFds(before);
      tx.close();
      rx.close();
    }
    {
      const [tx, rx] = UnixStream.pair();
      tx.sendFdsSync("0123456789", [file]);
      const before = fdSnapshot();
      using got = rx.recvFdsIntoSync(1, new Uint8Array(3));
      expect(got.bytesRead).toBe(3);
      expect(got.fds.length).toBe(1);
      expectNewFds(before, 1);
      got.fds[0]!.close();
      tx.close();
      rx.close();
    }
    file.close();
    expectNoNewFds(baseline);
  });
});

describe("counts and limits", () => {
  test("recvFdsSync(0) still receives, and closes, any fds", () => {
    const baseline = fdSnapshot();
    const [tx, rx] = UnixStream.pair();
    const [pr, pw] = pipeRaw();
    setNonblocking(pr);
    tx.sendFdsSync("data", [pw, pw, pw]);
    closeRaw(pw);
    const before = fdSnapshot();
    using got = rx.recvFdsSync(0);
    expect(got.fds).toEqual([]);
    expect(new TextDecoder().decode(got.data)).toBe("data");
    expectNoNewFds(before);
    expect(readRaw(pr, 1)).toBe(0); // every copy of the write end is gone
    closeRaw(pr);
    tx.close();
    rx.close();
    expectNoNewFds(baseline);
  });

  test(`more than abi.maxFdsPerSend (${abi.maxFdsPerSend}) fds → ERR_UA_TOO_MANY_FDS before any syscall`, () => {
    const baseline = fdSnapshot();
    const [tx, rx] = UnixStream.pair();
    const [dtx, drx] = UnixDatagram.pair();
    setNonblocking(rx.fd);
    setNonblocking(drx.fd);
    const file = devNull();
    const n = abi.maxFdsPerSend + 1;
    const many = Array(n).fill(file);
    const e = expectUa(() => tx.sendFdsSync("x", many), "ERR_UA_TOO_MANY_FDS");
    expect(e.kind).toBe("InvalidInput");
    expect(e.message).toContain(String(n));
    expectUa(() => tx.sendFdsVectoredSync(["x", "y"], many), "ERR_UA_TOO_MANY_FDS");
    expectUa(() => tx.sendFdsAllSync("xyz", many), "ERR_UA_TOO_MANY_FDS");
    expectUa(() => dtx.sendFdsSync("x", many), "ERR_UA_TOO_MANY_FDS");
    expectUa(() => tx.sendFdsSync("x", Array(1000).fill(file)), "ERR_UA_TOO_MANY_FDS");
    // no syscall happened: the peers have nothing queued (not even the payload byte)
    expectEagain(() => rx.recvFdsSync(8));
    expectEagain(() => drx.recvFdsSync(8));
    expect(isOpen(file.fd)).toBe(true);
    file.close();
    tx.close();
    rx.close();
    dtx.close();
    drx.close();
    expectNoNewFds(baseline);
  });

  test(`exactly abi.maxFdsPerSend (${abi.maxFdsPerSend}) fds work (stream and datagram)`, () => {
    const baseline = fdSnapshot();
    const file = devNull();
    const max = abi.maxFdsPerSend;
    for (const make of [() => UnixStream.pair(), () => UnixDatagram.pair()] as const) {
      const [tx, rx] = make();
      expect(tx.sendFdsSync("x", Array(max).fill(file))).toBe(1);
      const before = fdSnapshot();
      const got = rx.recvFdsExactSync(max);
      expect(got.fds.length).toBe(max);
      expectNewFds(before, max);
      expect(new Set(got.fds.map((f) => f.fd)).size).toBe(max);
      for (const f of [got.fds[0]!, got.fds[max - 1]!]) {
        expect(fdTarget(f.fd)).toBe("/dev/null");
        expect(hasCloexec(f.fd)).toBe(true);
      }
      got[Symbol.dispose]();
      expectNoNewFds(before);
      tx.close();
      rx.close();
    }
    file.close();
    expectNoNewFds(baseline);
  });

  test("ReceivedFds / ReceivedInto [Symbol.dispose] close their fds (and skip ones already closed/released)", () => {
    const baseline = fdSnapshot();
    const [tx, rx] = UnixStream.pair();
    const file = devNull();
    tx.sendFdsSync("a", [file, file, file]);
    const before = fdSnapshot();
    let released = -1;
    {
      using got = rx.recvFdsSync(3);
      expect(got).toBeInstanceOf(ReceivedFds);
      expectNewFds(before, 3);
      got.fds[0]!.close();
      released = got.fds[1]!.release();
    }
    expect(isOpen(released)).toBe(true); // released: now ours, not closed by dispose
    expectNewFds(before, 1);
    closeRaw(released);
    tx.sendFdsSync("b", [file, file]);
    {
      using got = rx.recvFdsIntoSync(2, new Uint8Array(4));
      expect(got).toBeInstanceOf(ReceivedInto);
      expect(got.fds.length).toBe(2);
      expectNewFds(before, 2);
    }
    expectNoNewFds(before);
    file.close();
    tx.close();
    rx.close();
    expectNoNewFds(baseline);
  });

  test("stream EOF returns 0 bytes and no fds", () => {
    const baseline = fdSnapshot();
    const [tx, rx] = UnixStream.pair();
    tx.close();
    using got = rx.recvFdsSync(4);
    expect(got.data.length).toBe(0);
    expect(got.fds).toEqual([]);
    rx.close();
    expectNoNewFds(baseline);
  });
});
