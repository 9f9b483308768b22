/**
 * Low-level ownership regressions: the Rust crate's tests/ancillary_ownership.rs (all 10 cases) plus the
 * classic pitfalls (stale send fds, partial iteration, `using`, drain-once, failed receive, clear()
 * on an iterator the caller still holds). Every check counts open fds (test/helpers/fds.ts).
 *
 * Where the crate relies on "drop everything, count equals baseline", disposing the SocketAncillary at
 * the end would also close fds an iterator forgot (the buffer tracks its iterators). So each case also
 * checks the count right after the action, before the buffer is disposed: that is what pins the fix to
 * the iterator/clear/receive path under test and not to the buffer's final dispose.
 */
import { describe, expect, test } from "bun:test";
import { cmsgRecvmsg, cmsgSendmsg, Messages, ScmRights, SocketAncillary } from "../src/ancillary.ts";
import { OwnedFd } from "../src/owned-fd.ts";
import { UnixStream } from "../src/socket.ts";
import { MESSAGES, SystemError, UnixAncillaryError } from "../src/errors.ts";
import { abi } from "../src/platform/index.ts";
import { fdTarget, fdSnapshot, expectNewFds, expectNoNewFds, type FdSnapshot } from "./helpers/fds.ts";
import { closeRaw, hasCloexec, isOpen, openRaw, setNonblocking } from "./fixtures/libc.ts";

function devNull(): OwnedFd {
  return OwnedFd.from(openRaw("/dev/null"));
}

function expectUa(f: () => unknown, code: string): UnixAncillaryError {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof UnixAncillaryError)) throw new Error(`expected UnixAncillaryError ${code}, got ${err}`);
  expect(err.code).toBe(code as never);
  return err;
}

function expectSys(f: () => unknown, code: string): SystemError {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof SystemError)) throw new Error(`expected SystemError ${code}, got ${err}`);
  expect(err.code).toBe(code);
  return err;
}

/** Every fd the buffer still hands out, flattened (takes ownership: the caller must close them). */
function drainAll(anc: SocketAncillary): OwnedFd[] {
  const out: OwnedFd[] = [];
  for (const m of anc.messages()) if (m.type === "rights") for (const fd of m.fds) out.push(fd);
  return out;
}

interface Ctx {
  tx: UnixStream;
  rx: UnixStream;
  file: OwnedFd;
  anc: SocketAncillary;
  /** open-fd count right before the first receive (sockets and file open, nothing received) */
  preRecv: FdSnapshot;
}

/**
 * The crate's check_cleanup: baseline → socketpair, /dev/null, 128-byte control buffer,
 * sendFds("x", [file, file, file]), cmsgRecvmsg with a 1-byte iov → action → dispose all → baseline.
 * `action` returns how many received fds it deliberately holds open at that moment (checked against
 * preRecv before the buffer is disposed), or null to skip that intermediate check.
 */
function checkCleanup(action: (c: Ctx) => number | null, after?: (c: Ctx) => void): void {
  const baseline = fdSnapshot();
  const [tx, rx] = UnixStream.pair();
  const file = devNull();
  const anc = new SocketAncillary(new Uint8Array(128));
  expect(tx.sendFdsSync("x", [file, file, file])).toBe(1);
  const preRecv = fdSnapshot();
  const r = cmsgRecvmsg(rx, [new Uint8Array(1)], anc);
  expect(r).toEqual({ bytesRead: 1, truncated: false, dataTruncated: false });
  expectNewFds(preRecv, 3);
  const ctx = { tx, rx, file, anc, preRecv };
  const held = action(ctx);
  if (held !== null) expectNewFds(preRecv, held);
  after?.(ctx);
  anc[Symbol.dispose]();
  tx.close();
  rx.close();
  file.close();
  expectNoNewFds(baseline); // "unconsumed received descriptors leaked"
}

describe("ancillary_ownership (Rust crate parity)", () => {
  test("1. send_buffer_never_yields_owners", () => {
    const baseline = fdSnapshot();
    const file = devNull();
    const n = file.fd;
    {
      using anc = new SocketAncillary(new Uint8Array(64));
      anc.addFds([file]);
      const m = anc.messages();
      expect(m.next().done).toBe(true);
      expect([...anc.messages()]).toEqual([]);
    } // disposing a send buffer closes nothing
    expect(file.closed).toBe(false);
    expect(isOpen(n)).toBe(true);
    expect(fdTarget(n)).toBe("/dev/null");
    file.close();
    expectNoNewFds(baseline);
  });

  test("2. receive_messages_are_consumed_once", () => {
    const baseline = fdSnapshot();
    const [tx, rx] = UnixStream.pair();
    const file = devNull();
    const anc = new SocketAncillary(new Uint8Array(128));
    tx.sendFdsSync("x", [file]);
    cmsgRecvmsg(rx, [new Uint8Array(1)], anc);
    const first = drainAll(anc);
    expect(first.length).toBe(1);
    expect(drainAll(anc)).toEqual([]);
    expect([...anc.messages()]).toEqual([]);
    expect(fdTarget(first[0]!.fd)).toBe("/dev/null");
    expect(first[0]!.fd).not.toBe(file.fd);
    // the yielded fd is the caller's: clearing/disposing the buffer does not close it
    anc.clear();
    anc[Symbol.dispose]();
    expect(isOpen(first[0]!.fd)).toBe(true);
    first[0]!.close();
    tx.close();
    rx.close();
    file.close();
    expectNoNewFds(baseline);
  });

  test("3. dropping_receive_buffer_closes_unread_fds", () => {
    checkCleanup(() => null);
    // and explicitly: dispose alone brings the count back before anything else is closed
    checkCleanup(({ anc }) => {
      anc[Symbol.dispose]();
      return 0;
    });
  });

  test("4. clearing_receive_buffer_closes_unread_fds", () => {
    checkCleanup(({ anc }) => {
      anc.clear();
      expect(anc.receiveMode).toBe(false);
      expect(anc.length).toBe(0);
      expect(drainAll(anc)).toEqual([]);
      return 0;
    });
  });

  test("5. reusing_receive_buffer_closes_old_fds", () => {
    let kept: OwnedFd[] = [];
    checkCleanup(
      ({ tx, rx, file, anc }) => {
        tx.sendFdsSync("y", [file]);
        cmsgRecvmsg(rx, [new Uint8Array(1)], anc);
        kept = drainAll(anc);
        expect(kept.length).toBe(1);
        expect(fdTarget(kept[0]!.fd)).toBe("/dev/null");
        return 1; // the 3 old ones closed, only the new one is open
      },
      () => kept.forEach((f) => f.close()),
    );
  });

  test("6. partial_rights_iteration_closes_remainder (break in for..of)", () => {
    let taken: OwnedFd | undefined;
    checkCleanup(
      ({ anc }) => {
        for (const m of anc.messages()) {
          if (m.type !== "rights") continue;
          expect(m.fds.remaining).toBe(3);
          for (const fd of m.fds) {
            taken = fd;
            break; // return() must close the other two
          }
          expect(m.fds.remaining).toBe(0);
          break;
        }
        expect(taken).toBeDefined();
        expect(isOpen(taken!.fd)).toBe(true);
        return 1;
      },
      () => taken!.close(),
    );
  });

  test("7. dropping_messages_without_iteration_closes_fds", () => {
    checkCleanup(({ anc }) => {
      const m = anc.messages();
      m[Symbol.dispose]();
      expect(m.next().done).toBe(true);
      return 0;
    });
  });

  test("8. failed_receive_does_not_retain_previous_messages (EAGAIN)", () => {
    checkCleanup(({ rx, anc }) => {
      setNonblocking(rx.fd);
      const e = expectSys(() => cmsgRecvmsg(rx, [new Uint8Array(1)], anc), "EAGAIN");
      expect(e.syscall).toBe("recvmsg");
      expect(drainAll(anc)).toEqual([]);
      // the buffer entered receive mode even though the receive failed
      expect(anc.receiveMode).toBe(true);
      expectUa(() => anc.addFds([]), "ERR_UA_BUFFER");
      return 0;
    });
  });

  test("9. receive_buffer_cannot_be_sent_until_cleared", () => {
    checkCleanup(({ tx, rx, anc }) => {
      const e = expectUa(() => cmsgSendmsg(tx, ["x"], anc), "ERR_UA_RECEIVE_BUFFER");
      expect(e.kind).toBe("InvalidInput");
      expect(e.message).toBe(MESSAGES.receiveBufferSend);
      // refused before any syscall: the peer has nothing to read
      setNonblocking(rx.fd);
      expectSys(() => rx.recvFdsSync(8), "EAGAIN");
      expectUa(() => anc.addFds([]), "ERR_UA_BUFFER");
      anc.clear();
      expect(cmsgSendmsg(tx, ["x"], anc)).toBe(1); // length 0: no control attached
      const got = rx.recvFdsSync(8);
      expect(new TextDecoder().decode(got.data)).toBe("x");
      expect(got.fds.length).toBe(0);
      return 0;
    });
  });

  for (let offset = 0; offset <= abi.cmsg.align; offset++) {
    test(`10. unaligned_buffers_roundtrip at offset ${offset} (two addFds calls, FD_CLOEXEC on arrival)`, () => {
      const baseline = fdSnapshot();
      const [tx, rx] = UnixStream.pair();
      const file = devNull();
      const sendStore = new Uint8Array(128 + offset);
      const send = new SocketAncillary(sendStore.subarray(offset));
      send.addFds([file]);
      send.addFds([file]);
      expect(send.length).toBe(2 * SocketAncillary.bufferSizeForRights(1));
      expect(cmsgSendmsg(tx, ["x"], send)).toBe(1);
      const recvStore = new Uint8Array(128 + offset);
      const recv = new SocketAncillary(recvStore.subarray(offset));
      const preRecv = fdSnapshot();
      const r = cmsgRecvmsg(rx, [new Uint8Array(1)], recv);
      expect(r.bytesRead).toBe(1);
      expect(r.truncated).toBe(false);
      const fds = drainAll(recv);
      expect(fds.length).toBe(2);
      expectNewFds(preRecv, 2);
      for (const fd of fds) {
        expect(hasCloexec(fd.fd)).toBe(true);
        expect(fdTarget(fd.fd)).toBe("/dev/null");
        expect(fd.fd).not.toBe(file.fd);
      }
      expect(fds[0]!.fd).not.toBe(fds[1]!.fd);
      fds.forEach((f) => f.close());
      recv[Symbol.dispose]();
      send[Symbol.dispose]();
      expect(isOpen(file.fd)).toBe(true); // the send buffer never closes the caller's fd
      tx.close();
      rx.close();
      file.close();
      expectNoNewFds(baseline);
    });
  }
});

describe("classic ownership pitfalls", () => {
  test("send buffer refuses after a staged OwnedFd was closed (ERR_UA_STALE_FD), and after its number was reused", () => {
    const baseline = fdSnapshot();
    const [tx, rx] = UnixStream.pair();
    setNonblocking(rx.fd);
    const file = devNull();
    const n = file.fd;
    const anc = new SocketAncillary(new Uint8Array(64));
    anc.addFds([file]);
    file.close();
    const e1 = expectUa(() => cmsgSendmsg(tx, ["x"], anc), "ERR_UA_STALE_FD");
    expect(e1.kind).toBe("InvalidInput");
    // the number gets reused by an unrelated open: the buffer must still refuse
    const zero = openRaw("/dev/zero");
    expect(zero).toBe(n); // precondition: lowest free number is reused
    expect(fdTarget(n)).toBe("/dev/zero");
    expectUa(() => cmsgSendmsg(tx, ["x"], anc), "ERR_UA_STALE_FD");
    // ...even when the new file is wrapped in a fresh OwnedFd with the same number
    const zeroOwned = OwnedFd.from(zero);
    expectUa(() => cmsgSendmsg(tx, ["x"], anc), "ERR_UA_STALE_FD");
    // nothing reached the peer (no /dev/zero was delivered in place of /dev/null)
    expectSys(() => rx.recvFdsSync(8), "EAGAIN");
    // after clear() the buffer forgets the stale source and can be rebuilt
    anc.clear();
    anc.addFds([zeroOwned]);
    expect(cmsgSendmsg(tx, ["x"], anc)).toBe(1);
    using got = rx.recvFdsSync(8);
    expect(got.fds.length).toBe(1);
    expect(fdTarget(got.fds[0]!.fd)).toBe("/dev/zero");
    got.fds[0]!.close();
    zeroOwned.close();
    tx.close();
    rx.close();
    expectNoNewFds(baseline);
  });

  test("send buffer refuses when a staged { fd } object now lends a different number", () => {
    const [tx, rx] = UnixStream.pair();
    setNonblocking(rx.fd);
    const a = devNull();
    const b = devNull();
    const holder = { fd: a.fd };
    const anc = new SocketAncillary(new Uint8Array(64));
    anc.addFds([holder]);
    holder.fd = b.fd;
    const e = expectUa(() => cmsgSendmsg(tx, ["x"], anc), "ERR_UA_STALE_FD");
    expect(e.message).toContain(`replaced by fd ${b.fd}`);
    expectSys(() => rx.recvFdsSync(8), "EAGAIN");
    a.close();
    b.close();
    tx.close();
    rx.close();
  });

  test("`using` on Messages closes every fd it did not yield", () => {
    checkCleanup(({ anc }) => {
      {
        using m = anc.messages();
        expect(m).toBeInstanceOf(Messages);
      }
      return 0;
    });
  });

  test("`using` on ScmRights closes every fd it did not yield", () => {
    let first: OwnedFd | undefined;
    checkCleanup(
      ({ anc }) => {
        const msg = anc.messages().next().value!;
        expect(msg.type).toBe("rights");
        if (msg.type !== "rights") return null;
        {
          using rights = msg.fds;
          expect(rights).toBeInstanceOf(ScmRights);
          first = rights.next().value!;
        }
        expect(isOpen(first!.fd)).toBe(true);
        return 1;
      },
      () => first!.close(),
    );
  });

  test("`using` on SocketAncillary closes unread fds", () => {
    const baseline = fdSnapshot();
    const [tx, rx] = UnixStream.pair();
    const file = devNull();
    tx.sendFdsSync("x", [file, file]);
    const preRecv = fdSnapshot();
    {
      using anc = new SocketAncillary(new Uint8Array(128));
      cmsgRecvmsg(rx, [new Uint8Array(1)], anc);
      expectNewFds(preRecv, 2);
    }
    expectNoNewFds(preRecv);
    tx.close();
    rx.close();
    file.close();
    expectNoNewFds(baseline);
  });

  test("clear() closes the remaining fds of a rights iterator the caller still holds (yielded ones stay open)", () => {
    let yielded: OwnedFd | undefined;
    checkCleanup(
      ({ anc }) => {
        const m = anc.messages();
        const msg = m.next().value!;
        if (msg.type !== "rights") throw new Error("expected rights");
        const rights = msg.fds;
        yielded = rights.next().value!;
        expect(rights.remaining).toBe(2);
        anc.clear();
        expect(rights.remaining).toBe(0);
        expect(rights.next().done).toBe(true);
        expect(isOpen(yielded.fd)).toBe(true);
        return 1;
      },
      () => yielded!.close(),
    );
  });

  test("clear() also closes the fds of a Messages iterator the caller still holds", () => {
    checkCleanup(({ anc }) => {
      const m = anc.messages();
      anc.clear();
      expect(m.next().done).toBe(true);
      return 0;
    });
  });

  test("a new receive closes what a held iterator had not yielded", () => {
    let fresh: OwnedFd[] = [];
    checkCleanup(
      ({ tx, rx, file, anc }) => {
        const m = anc.messages();
        tx.sendFdsSync("y", [file]);
        cmsgRecvmsg(rx, [new Uint8Array(1)], anc);
        expect(m.next().done).toBe(true);
        fresh = drainAll(anc);
        expect(fresh.length).toBe(1);
        return 1;
      },
      () => fresh.forEach((f) => f.close()),
    );
  });

  test("received fds from the low-level path carry FD_CLOEXEC", () => {
    checkCleanup(({ anc }) => {
      const fds = drainAll(anc);
      for (const f of fds) expect(hasCloexec(f.fd)).toBe(true);
      fds.forEach((f) => f.close());
      return 0;
    });
  });

  test("a raw number staged in a send buffer is sent as lent; the buffer never closes it", () => {
    const raw = openRaw("/dev/null");
    const [tx, rx] = UnixStream.pair();
    {
      using anc = new SocketAncillary(new Uint8Array(64));
      anc.addFds([raw]);
      expect(cmsgSendmsg(tx, ["x"], anc)).toBe(1);
    }
    expect(isOpen(raw)).toBe(true);
    using got = rx.recvFdsSync(1);
    expect(got.fds.length).toBe(1);
    closeRaw(raw);
    tx.close();
    rx.close();
  });
});
