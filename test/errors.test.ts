/**
 * Error contract: every crate error message (exact strings), the UnixAncillaryError code/kind pairs that
 * carry them, SystemError fields for OS failures (EBADF, EPIPE without SIGPIPE death, EAGAIN preserved,
 * ENOTSOCK), TypeError/RangeError with Node-style codes naming the bad argument, and ERR_UA_CLOSED for
 * closed sockets and fds.
 */
import { describe, expect, test } from "bun:test";
import {
  cmsgRecvmsg,
  cmsgSendmsg,
  MESSAGES,
  OwnedFd,
  ScmCredentials,
  setPassCred,
  SocketAncillary,
  SystemError,
  UnixAncillaryError,
  UnixDatagram,
  UnixStream,
} from "../src/index.ts";
import { fdSnapshot, expectNoNewFds } from "./helpers/fds.ts";
import { closeRaw, isOpen, openRaw, setNonblocking } from "./fixtures/libc.ts";

function catchErr(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("expected the call to throw");
}

function expectUa(f: () => unknown, code: string, kind: string, message?: string): UnixAncillaryError {
  const e = catchErr(f);
  if (!(e instanceof UnixAncillaryError)) throw new Error(`expected UnixAncillaryError ${code}, got ${e}`);
  expect(e).toBeInstanceOf(Error);
  expect(e.name).toBe("UnixAncillaryError");
  expect(e.code).toBe(code as never);
  expect(e.kind).toBe(kind as never);
  if (message !== undefined) expect(e.message).toBe(message);
  return e;
}

function expectSys(f: () => unknown, code: string, errno: number, syscall: string): SystemError {
  const e = catchErr(f);
  if (!(e instanceof SystemError)) throw new Error(`expected SystemError ${code}, got ${e}`);
  expect(e).toBeInstanceOf(Error);
  expect(e.name).toBe("SystemError");
  expect(e.code).toBe(code);
  expect(e.errno).toBe(errno);
  expect(e.syscall).toBe(syscall);
  expect(e.message).toContain(code);
  expect(e.message).toContain(syscall);
  return e;
}

function expectArgError(f: () => unknown, ctor: typeof TypeError | typeof RangeError, code: string, argName: string): void {
  const e = catchErr(f);
  expect(e).toBeInstanceOf(ctor);
  expect((e as Error & { code?: string }).code).toBe(code);
  expect((e as Error).message).toContain(`"${argName}"`);
}

function devNull(): OwnedFd {
  return OwnedFd.from(openRaw("/dev/null"));
}

describe("crate messages, word for word", () => {
  test("MESSAGES holds the crate's exact strings", () => {
    expect(MESSAGES.emptyStreamPayload).toBe("SCM_RIGHTS over a Unix stream requires at least one payload byte");
    expect(MESSAGES.ancillaryTruncated).toBe("ancillary data truncated; discard the incomplete message");
    expect(MESSAGES.datagramTruncated).toBe("datagram payload truncated before it fit the receive buffer");
    expect(MESSAGES.exactCount(2, 3)).toBe("expected exactly 2 file descriptors, received 3");
    // one deliberate difference from the crate: singular for 1 ("1 file descriptors" reads as a typo)
    expect(MESSAGES.exactCount(1, 0)).toBe("expected exactly 1 file descriptor, received 0");
    expect(MESSAGES.writeZeroFirst).toBe("failed to send fd payload byte");
    expect(MESSAGES.writeZeroShort).toBe("short write");
    expect(MESSAGES.ancillaryBuffer).toBe("ancillary buffer too small or not cleared after receive");
    expect(MESSAGES.receiveBufferSend).toBe("clear the receive buffer before building a send");
  });

  test("code → kind table", () => {
    const table: [string, string][] = [
      ["ERR_UA_EMPTY_PAYLOAD", "InvalidInput"],
      ["ERR_UA_TOO_MANY_FDS", "InvalidInput"],
      ["ERR_UA_RECEIVE_BUFFER", "InvalidInput"],
      ["ERR_UA_BUFFER", "InvalidInput"],
      ["ERR_UA_ANCILLARY_TRUNCATED", "InvalidData"],
      ["ERR_UA_DATAGRAM_TRUNCATED", "InvalidData"],
      ["ERR_UA_FD_COUNT_MISMATCH", "InvalidData"],
      ["ERR_UA_WRITE_ZERO", "WriteZero"],
      ["ERR_UA_STALE_FD", "InvalidInput"],
      ["ERR_UA_CLOSED", "Closed"],
      ["ERR_UA_SIZE_OVERFLOW", "InvalidInput"],
      ["ERR_UA_UNSUPPORTED", "Unsupported"],
    ];
    for (const [code, kind] of table) {
      const e = new UnixAncillaryError(code as never, "m");
      expect(e.kind).toBe(kind as never);
    }
  });

  test("ERR_UA_EMPTY_PAYLOAD (InvalidInput) on every stream send, before any syscall (5.5.8, 5.6.2)", () => {
    const baseline = fdSnapshot();
    const [tx, rx] = UnixStream.pair();
    setNonblocking(rx.fd);
    const file = devNull();
    const msg = MESSAGES.emptyStreamPayload;
    expectUa(() => tx.sendFdsSync("", [file]), "ERR_UA_EMPTY_PAYLOAD", "InvalidInput", msg);
    expectUa(() => tx.sendFdsSync(new Uint8Array(0), [file]), "ERR_UA_EMPTY_PAYLOAD", "InvalidInput", msg);
    expectUa(() => tx.sendFdsVectoredSync(["", new Uint8Array(0)], [file]), "ERR_UA_EMPTY_PAYLOAD", "InvalidInput", msg);
    expectUa(() => tx.sendFdsAllSync("", [file]), "ERR_UA_EMPTY_PAYLOAD", "InvalidInput", msg);
    // nothing was sent
    expectSys(() => rx.recvFdsSync(4), "EAGAIN", 11, "recvmsg");
    // empty payload without fds is fine and returns 0 (5.5.9, 5.6.3)
    expect(tx.sendFdsSync("", [])).toBe(0);
    expect(tx.sendFdsSync("")).toBe(0);
    expect(tx.sendFdsVectoredSync([""], [])).toBe(0);
    tx.sendFdsAllSync("");
    expectSys(() => rx.recvFdsSync(4), "EAGAIN", 11, "recvmsg");
    // datagrams have no empty-payload rule
    const [dtx, drx] = UnixDatagram.pair();
    expect(dtx.sendFdsSync("", [file])).toBe(0);
    using got = drx.recvFdsSync(1);
    expect(got.data.length).toBe(0);
    expect(got.fds.length).toBe(1);
    got.fds[0]!.close();
    for (const s of [tx, rx, dtx, drx]) s.close();
    file.close();
    expectNoNewFds(baseline);
  });

  test("ERR_UA_FD_COUNT_MISMATCH (InvalidData) with the crate message", () => {
    const [tx, rx] = UnixStream.pair();
    const file = devNull();
    tx.sendFdsSync("x", [file]);
    expectUa(() => rx.recvFdsExactSync(2), "ERR_UA_FD_COUNT_MISMATCH", "InvalidData", "expected exactly 2 file descriptors, received 1");
    tx.sendFdsSync("x", []);
    expectUa(() => rx.recvFdsExactSync(1), "ERR_UA_FD_COUNT_MISMATCH", "InvalidData", "expected exactly 1 file descriptor, received 0");
    file.close();
    tx.close();
    rx.close();
  });

  test("ERR_UA_DATAGRAM_TRUNCATED (InvalidData) with the crate message", () => {
    const [tx, rx] = UnixDatagram.pair();
    tx.sendFdsSync("0123456789abcdefghijklmnop", []);
    expectUa(() => rx.recvFdsIntoSync(0, new Uint8Array(4)), "ERR_UA_DATAGRAM_TRUNCATED", "InvalidData", MESSAGES.datagramTruncated);
    tx.close();
    rx.close();
  });

  test("ERR_UA_BUFFER (InvalidInput): too small, and in receive mode", () => {
    const file = devNull();
    const small = new SocketAncillary(new Uint8Array(1));
    expectUa(() => small.addFds([file]), "ERR_UA_BUFFER", "InvalidInput", MESSAGES.ancillaryBuffer);
    const [tx, rx] = UnixStream.pair();
    tx.sendFdsSync("x", []);
    const anc = new SocketAncillary(new Uint8Array(64));
    cmsgRecvmsg(rx, [new Uint8Array(4)], anc);
    expectUa(() => anc.addFds([file]), "ERR_UA_BUFFER", "InvalidInput", MESSAGES.ancillaryBuffer);
    expectUa(() => anc.addCredentials(ScmCredentials.forThisProcess()), "ERR_UA_BUFFER", "InvalidInput", MESSAGES.ancillaryBuffer);
    expectUa(() => cmsgSendmsg(tx, ["x"], anc), "ERR_UA_RECEIVE_BUFFER", "InvalidInput", MESSAGES.receiveBufferSend);
    anc[Symbol.dispose]();
    file.close();
    tx.close();
    rx.close();
  });

  test("ERR_UA_SIZE_OVERFLOW (InvalidInput)", () => {
    expectUa(() => SocketAncillary.bufferSizeForRights(2 ** 52), "ERR_UA_SIZE_OVERFLOW", "InvalidInput", "ancillary buffer size overflow");
  });

  test("ERR_UA_TOO_MANY_FDS (InvalidInput)", () => {
    const [tx, rx] = UnixStream.pair();
    expectUa(() => tx.sendFdsSync("x", Array(254).fill(0)), "ERR_UA_TOO_MANY_FDS", "InvalidInput");
    tx.close();
    rx.close();
  });
});

describe("SystemError", () => {
  test("sendmsg on a closed fd number: code EBADF, errno 9, syscall sendmsg", () => {
    const [a, b] = UnixStream.pair();
    const n = a.fd;
    a.close();
    expect(isOpen(n)).toBe(false);
    const anc = new SocketAncillary(new Uint8Array(32));
    const e = expectSys(() => cmsgSendmsg(n, ["x"], anc), "EBADF", 9, "sendmsg");
    expect(e.message).toBe(`sendmsg failed: EBADF (bad file descriptor): the socket (fd ${n}) is not open`);
    b.close();
  });

  test("recvmsg on a closed fd number: EBADF, syscall recvmsg", () => {
    const [a, b] = UnixStream.pair();
    const n = b.fd;
    b.close();
    const anc = new SocketAncillary(new Uint8Array(32));
    expectSys(() => cmsgRecvmsg(n, [new Uint8Array(1)], anc), "EBADF", 9, "recvmsg");
    a.close();
  });

  test("sendmsg on a non-socket: ENOTSOCK", () => {
    const raw = openRaw("/dev/null");
    const anc = new SocketAncillary(new Uint8Array(32));
    expectSys(() => cmsgSendmsg(raw, ["x"], anc), "ENOTSOCK", 88, "sendmsg");
    closeRaw(raw);
  });

  test("send to a closed peer: EPIPE (errno 32), the process survives (MSG_NOSIGNAL)", () => {
    const baseline = fdSnapshot();
    const [tx, rx] = UnixStream.pair();
    const file = devNull();
    rx.close();
    expectSys(() => tx.sendFdsSync("x", [file]), "EPIPE", 32, "sendmsg");
    expectSys(() => tx.sendFdsSync("x"), "EPIPE", 32, "sendmsg");
    expectSys(() => tx.sendFdsAllSync("x".repeat(10000), [file]), "EPIPE", 32, "sendmsg");
    expectSys(() => tx.sendFdsVectoredSync(["a", "b"], [file]), "EPIPE", 32, "sendmsg");
    const anc = new SocketAncillary(new Uint8Array(32));
    anc.addFds([file]);
    expectSys(() => cmsgSendmsg(tx, ["x"], anc), "EPIPE", 32, "sendmsg");
    expect(isOpen(file.fd)).toBe(true); // the caller's fd is untouched by a failed send
    file.close();
    tx.close();
    expectNoNewFds(baseline);
  });

  test("EAGAIN is preserved on non-blocking sockets (receive on empty, send on full)", () => {
    const baseline = fdSnapshot();
    const [tx, rx] = UnixStream.pair();
    setNonblocking(rx.fd);
    setNonblocking(tx.fd);
    expectSys(() => rx.recvFdsSync(1), "EAGAIN", 11, "recvmsg");
    expectSys(() => rx.recvFdsExactSync(1), "EAGAIN", 11, "recvmsg");
    expectSys(() => rx.recvFdsIntoSync(1, new Uint8Array(4)), "EAGAIN", 11, "recvmsg");
    const anc = new SocketAncillary(new Uint8Array(32));
    expectSys(() => cmsgRecvmsg(rx, [new Uint8Array(4)], anc), "EAGAIN", 11, "recvmsg");
    const chunk = new Uint8Array(65536);
    let sent = 0;
    let err: unknown;
    for (let i = 0; i < 10_000 && err === undefined; i++) {
      try {
        sent += tx.sendFdsSync(chunk);
      } catch (e) {
        err = e;
      }
    }
    expect(sent).toBeGreaterThan(0);
    expect(err).toBeInstanceOf(SystemError);
    expect((err as SystemError).code).toBe("EAGAIN");
    expect((err as SystemError).errno).toBe(11);
    expect((err as SystemError).syscall).toBe("sendmsg");
    tx.close();
    rx.close();
    expectNoNewFds(baseline);
  });
});

describe("argument validation", () => {
  test("bad argument types → TypeError ERR_INVALID_ARG_TYPE naming the argument", () => {
    const [tx, rx] = UnixStream.pair();
    const anc = new SocketAncillary(new Uint8Array(32));
    const T = TypeError;
    const C = "ERR_INVALID_ARG_TYPE";
    expectArgError(() => tx.sendFdsSync(123 as never), T, C, "data");
    expectArgError(() => tx.sendFdsSync(null as never), T, C, "data");
    expectArgError(() => tx.sendFdsSync("x", "0" as never), T, C, "fds");
    expectArgError(() => tx.sendFdsSync("x", [1.5]), T, C, "fds[0]");
    expectArgError(() => tx.sendFdsSync("x", [0, "1" as never]), T, C, "fds[1]");
    expectArgError(() => tx.sendFdsSync("x", [{} as never]), T, C, "fds[0]");
    expectArgError(() => tx.sendFdsSync("x", [{ fd: "3" } as never]), T, C, "fds[0].fd");
    expectArgError(() => tx.sendFdsVectoredSync("x" as never), T, C, "buffers");
    expectArgError(() => tx.sendFdsVectoredSync(["x", 5 as never]), T, C, "buffers[1]");
    expectArgError(() => rx.recvFdsSync("1" as never), T, C, "maxFds");
    expectArgError(() => rx.recvFdsSync(1.5), T, C, "maxFds");
    expectArgError(() => rx.recvFdsExactSync("1" as never), T, C, "n");
    expectArgError(() => rx.recvFdsIntoSync(1, "buf" as never), T, C, "buffer");
    expectArgError(() => rx.recvFdsSync(1, "opts" as never), T, C, "options");
    expectArgError(() => new SocketAncillary([] as never), T, C, "buffer");
    expectArgError(() => anc.addFds("x" as never), T, C, "fds");
    expectArgError(() => anc.addCredentials({} as never), T, C, "credentials");
    expectArgError(() => cmsgSendmsg(tx, "x" as never, anc), T, C, "buffers");
    expectArgError(() => cmsgSendmsg(tx, ["x"], {} as never), T, C, "ancillary");
    expectArgError(() => cmsgSendmsg("3" as never, ["x"], anc), T, C, "sock");
    expectArgError(() => cmsgRecvmsg(rx, ["s" as never], anc), T, C, "buffers[0]");
    expectArgError(() => cmsgRecvmsg(rx, [new Uint8Array(1)], null as never), T, C, "ancillary");
    expectArgError(() => setPassCred(rx, "yes" as never), T, C, "on");
    expectArgError(() => new ScmCredentials("1" as never, 0, 0), T, C, "pid");
    expectArgError(() => UnixStream.fromFd(3 as never), T, C, "fd");
    // a failed argument check must not have put the buffer into receive mode
    expect(anc.receiveMode).toBe(false);
    tx.close();
    rx.close();
  });

  test("out-of-range values → RangeError ERR_OUT_OF_RANGE naming the argument", () => {
    const [tx, rx] = UnixStream.pair();
    expectArgError(() => tx.sendFdsSync("x", [-1]), RangeError, "ERR_OUT_OF_RANGE", "fds[0]");
    expectArgError(() => rx.recvFdsSync(-1), RangeError, "ERR_OUT_OF_RANGE", "maxFds");
    expectArgError(() => rx.recvFdsSync(2 ** 21), RangeError, "ERR_OUT_OF_RANGE", "maxFds");
    expectArgError(() => rx.recvFdsSync(1, { bufferSize: 0 }), RangeError, "ERR_OUT_OF_RANGE", "options.bufferSize");
    tx.close();
    rx.close();
  });

  test("SocketAncillary.bufferSizeForRights follows the same argument contract", () => {
    // errors.ts: "Bad argument types throw plain TypeError/RangeError with code ERR_INVALID_ARG_TYPE/ERR_OUT_OF_RANGE"
    expectArgError(() => SocketAncillary.bufferSizeForRights("3" as never), TypeError, "ERR_INVALID_ARG_TYPE", "numFds");
    expectArgError(() => SocketAncillary.bufferSizeForRights(1.5), TypeError, "ERR_INVALID_ARG_TYPE", "numFds");
    expectArgError(() => SocketAncillary.bufferSizeForRights(-1), RangeError, "ERR_OUT_OF_RANGE", "numFds");
  });
});

describe("ERR_UA_CLOSED", () => {
  test("every operation on a closed socket throws ERR_UA_CLOSED (no syscall on a stale number)", () => {
    const [tx, rx] = UnixStream.pair();
    const n = tx.fd;
    tx.close();
    // the number is reused by an unrelated socket: a closed UnixStream must not send through it
    const [c, d] = UnixStream.pair();
    expect([c.fd, d.fd]).toContain(n);
    setNonblocking(c.fd);
    setNonblocking(d.fd);
    const msg = "UnixStream is closed";
    expectUa(() => tx.fd, "ERR_UA_CLOSED", "Closed", msg);
    expectUa(() => tx.sendFdsSync("x"), "ERR_UA_CLOSED", "Closed", msg);
    expectUa(() => tx.sendFdsVectoredSync(["x"]), "ERR_UA_CLOSED", "Closed", msg);
    expectUa(() => tx.sendFdsAllSync("x"), "ERR_UA_CLOSED", "Closed", msg);
    expectUa(() => tx.recvFdsSync(1), "ERR_UA_CLOSED", "Closed", msg);
    expectUa(() => tx.recvFdsIntoSync(1, new Uint8Array(1)), "ERR_UA_CLOSED", "Closed", msg);
    expectUa(() => tx.shutdown(), "ERR_UA_CLOSED", "Closed", msg);
    const anc = new SocketAncillary(new Uint8Array(32));
    expectUa(() => cmsgSendmsg(tx, ["x"], anc), "ERR_UA_CLOSED", "Closed", msg);
    expectUa(() => cmsgRecvmsg(tx, [new Uint8Array(1)], anc), "ERR_UA_CLOSED", "Closed", msg);
    expectUa(() => tx.intoFd(), "ERR_UA_CLOSED", "Closed", msg);
    expect(tx.closed).toBe(true);
    tx.close(); // idempotent
    // nothing leaked onto the reused number
    expectSys(() => c.recvFdsSync(1), "EAGAIN", 11, "recvmsg");
    expectSys(() => d.recvFdsSync(1), "EAGAIN", 11, "recvmsg");
    for (const s of [rx, c, d]) s.close();
  });

  test("a closed OwnedFd in a send's fd list throws ERR_UA_CLOSED; nothing is sent", () => {
    const [tx, rx] = UnixStream.pair();
    setNonblocking(rx.fd);
    const good = devNull();
    const gone = devNull();
    gone.close();
    expectUa(() => tx.sendFdsSync("x", [good, gone]), "ERR_UA_CLOSED", "Closed", "OwnedFd is closed");
    expectUa(() => new SocketAncillary(new Uint8Array(64)).addFds([good, gone]), "ERR_UA_CLOSED", "Closed");
    expectSys(() => rx.recvFdsSync(2), "EAGAIN", 11, "recvmsg");
    good.close();
    tx.close();
    rx.close();
  });
});
