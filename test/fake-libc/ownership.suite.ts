/**
 * Ownership under the darwin / FreeBSD code paths (fake libc): every fd the kernel installs reaches the
 * caller as an OwnedFd or is closed before the call returns; sent fds stay the caller's.
 */
import { describe, expect, test } from "bun:test";
import { cmsgSendmsg, OwnedFd, SocketAncillary, UnixDatagram, UnixSeqpacket, UnixStream, SystemError, UnixAncillaryError, platform } from "../../src/index.ts";
import { abiName, closeRaw, expectFds, files, k } from "./harness.ts";

test("the library runs on the fake ABI", () => {
  expect(platform.name).toBe(abiName);
});

const kinds = [["stream", () => UnixStream.pair()], ["datagram", () => UnixDatagram.pair()]] as const;

describe.each(kinds)("%s", (_kind, pair) => {
  test("received fds are new numbers for the same files, CLOEXEC, owned; sent fds stay open", () => {
    const base = k.openFds();
    const [a, b] = pair();
    const [f1, f2] = files(2);
    expect(a.sendFdsSync("hi", [f1!, f2!, f1!])).toBe(2);
    const got = b.recvFdsSync(8);
    expect(new TextDecoder().decode(got.data)).toBe("hi");
    expect(got.fds.length).toBe(3);
    const info = got.fds.map((o) => k.describeFd(o.fd)!);
    expect(info.map((i) => i.name)).toEqual(["f0", "f1", "f0"]);
    expect(info.every((i) => i.cloexec)).toBe(true);
    expect(new Set(got.fds.map((o) => o.fd)).size).toBe(3);
    expect(k.describeFd(f1!)).not.toBeNull(); // the sender's fds are untouched
    got[Symbol.dispose]();
    a.close();
    b.close();
    closeRaw(f1!, f2!);
    expectFds(base);
    expect(k.liveDescriptions()).toBe(0);
  });

  test("253 fds in one message", () => {
    const base = k.openFds();
    const [a, b] = pair();
    const [f] = files(1);
    expect(a.sendFdsSync("x", new Array(platform.maxFdsPerSend).fill(f))).toBe(1);
    using got = b.recvFdsSync(platform.maxFdsPerSend);
    expect(got.fds.length).toBe(253);
    got[Symbol.dispose]();
    a.close();
    b.close();
    closeRaw(f!);
    expectFds(base);
  });

  test("recvFdsExactSync with the wrong count closes every received fd", () => {
    const base = k.openFds();
    const [a, b] = pair();
    const [f] = files(1);
    a.sendFdsSync("x", [f!, f!]);
    let err: unknown;
    try {
      b.recvFdsExactSync(3);
    } catch (e) {
      err = e;
    }
    expect((err as UnixAncillaryError).code).toBe("ERR_UA_FD_COUNT_MISMATCH");
    expect(k.openFds()).toEqual([...base, a.fd, b.fd, f!].sort((x, y) => x - y));
    a.close();
    b.close();
    closeRaw(f!);
    expectFds(base);
  });

  test("EINTR from sendmsg and recvmsg is retried", () => {
    const base = k.openFds();
    const [a, b] = pair();
    const [f] = files(1);
    k.injectEintr("sendmsg", 2);
    expect(a.sendFdsSync("x", [f!])).toBe(1);
    k.injectEintr("recvmsg", 3);
    using got = b.recvFdsSync(1);
    expect(got.fds.length).toBe(1);
    got[Symbol.dispose]();
    a.close();
    b.close();
    closeRaw(f!);
    expectFds(base);
  });

  test("a send to a closed peer is EPIPE, never a SIGPIPE (SO_NOSIGPIPE on darwin, MSG_NOSIGNAL on FreeBSD)", () => {
    const base = k.openFds();
    const [a, b] = pair();
    const [f] = files(1);
    b.close();
    let err: unknown;
    try {
      a.sendFdsSync("x", [f!]);
    } catch (e) {
      err = e;
    }
    // a datagram pair's survivor has no peer any more: ENOTCONN/EPIPE/EDESTADDRREQ are all kernel-shaped
    expect(err).toBeInstanceOf(SystemError);
    if (_kind === "stream") expect((err as SystemError).code).toBe("EPIPE");
    a.close();
    closeRaw(f!);
    expectFds(base);
  });
});

test("datagram payload truncation closes the message's fds (ERR_UA_DATAGRAM_TRUNCATED)", () => {
  const base = k.openFds();
  const [a, b] = UnixDatagram.pair();
  const [f] = files(1);
  a.sendFdsSync(new Uint8Array(100), [f!, f!]);
  let err: unknown;
  try {
    b.recvFdsIntoSync(4, new Uint8Array(10));
  } catch (e) {
    err = e;
  }
  expect((err as UnixAncillaryError).code).toBe("ERR_UA_DATAGRAM_TRUNCATED");
  a.close();
  b.close();
  closeRaw(f!);
  expectFds(base);
});

test.skipIf(!platform.hasSeqpacket)("seqpacket pair (FreeBSD)", () => {
  const base = k.openFds();
  const [a, b] = UnixSeqpacket.pair();
  const [f] = files(1);
  a.sendFdsSync("m", [f!]);
  using got = b.recvFdsSync(2);
  expect(got.fds.length).toBe(1);
  got[Symbol.dispose]();
  a.close();
  b.close();
  closeRaw(f!);
  expectFds(base);
});

test.skipIf(platform.hasSeqpacket)("seqpacket is refused up front where AF_UNIX has none (darwin)", () => {
  expect(() => UnixSeqpacket.pair()).toThrow(expect.objectContaining({ code: "ERR_UA_UNSUPPORTED" }));
});

test("a stream send with fds and no payload byte is refused before the syscall", () => {
  const [a, b] = UnixStream.pair();
  const [f] = files(1);
  const before = k.calls.get("sendmsg") ?? 0;
  expect(() => a.sendFdsSync("", [f!])).toThrow(expect.objectContaining({ code: "ERR_UA_EMPTY_PAYLOAD" }));
  expect(k.calls.get("sendmsg") ?? 0).toBe(before);
  a.close();
  b.close();
  closeRaw(f!);
});

test("an fd number reused after a close outside the library is still protected from SIGPIPE", () => {
  const [a, b] = UnixStream.pair();
  a.sendFdsSync("x"); // darwin: SO_NOSIGPIPE set on this number
  const n = a.intoFd().release();
  b.close();
  expect(k.impl.close!(n)).toBe(0); // closed by other code, not through the library
  const [c, d] = UnixStream.pair();
  const s = c.fd === n ? c : d;
  expect(s.fd).toBe(n); // the kernel reused the number
  (s === c ? d : c).close();
  expect(() => s.sendFdsSync("y")).toThrow(expect.objectContaining({ code: "EPIPE" })); // and no SIGPIPE violation
  s.close();
});

test("a socket whose taken OwnedFd was closed directly (the `using owned` pattern): the number's next socket is still protected from SIGPIPE", () => {
  const [first, b] = UnixStream.pair();
  const owned = first.intoFd();
  const a = UnixStream.fromFd(owned);
  a.sendFdsSync("x"); // darwin: SO_NOSIGPIPE set for this socket
  const n = owned.fd;
  owned.close(); // the socket object is left behind, closed
  b.close();
  const [c, d] = UnixStream.pair();
  const s = c.fd === n ? c : d;
  expect(s.fd).toBe(n); // the kernel reused the number
  (s === c ? d : c).close();
  expect(() => s.sendFdsSync("y")).toThrow(expect.objectContaining({ code: "EPIPE" })); // and no SIGPIPE violation
  expect(a.closed).toBe(true);
  s.close();
});

test("cmsgSendmsg on a bare fd number is protected from SIGPIPE every time, also after the number was reused", () => {
  const anc = new SocketAncillary(new Uint8Array(64));
  const [a, b] = UnixStream.pair();
  const n = a.intoFd().release();
  expect(cmsgSendmsg(n, ["x"], anc)).toBe(1);
  b.close();
  expect(k.impl.close!(n)).toBe(0); // closed by other code, not through the library
  const [c, d] = UnixStream.pair();
  const s = c.fd === n ? c : d;
  expect(s.fd).toBe(n);
  (s === c ? d : c).close();
  expect(() => cmsgSendmsg(n, ["y"], anc)).toThrow(expect.objectContaining({ code: "EPIPE" }));
  s.close();
});

/** A stream whose peer is closed: a send on it must be EPIPE, never SIGPIPE. */
function brokenStream(): UnixStream {
  const [a, b] = UnixStream.pair();
  b.close();
  return a;
}

test("a socket subclass whose fd getter names another socket: that socket is protected from SIGPIPE too", () => {
  class Delegating extends UnixStream {
    other: UnixStream | null = null;
    constructor(owned: OwnedFd) {
      super(owned);
    }
    override get fd(): number {
      return this.other !== null ? this.other.fd : super.fd;
    }
  }
  const [a, b] = UnixStream.pair();
  const s = new Delegating(a.intoFd());
  expect(s.sendFdsSync("x")).toBe(1); // SO_NOSIGPIPE on s's own socket
  const broken = brokenStream();
  s.other = broken; // sends now go to a socket nobody has sent on
  expect(() => s.sendFdsSync("y")).toThrow(expect.objectContaining({ code: "EPIPE" })); // no SIGPIPE violation
  s.other = null;
  s.close();
  b.close();
  broken.close();
});

test("cmsgSendmsg with look-alikes (UnixStream or OwnedFd prototype, an OwnedFd with an own fd property): every socket sent on is protected", () => {
  const anc = new SocketAncillary(new Uint8Array(64));
  const lookAlikes = [
    (n: number) => Object.setPrototypeOf({ fd: n }, UnixStream.prototype) as { fd: number },
    (n: number) => Object.create(OwnedFd.prototype, { fd: { value: n, writable: true } }) as { fd: number },
  ];
  for (const make of lookAlikes) {
    const [a, b] = UnixStream.pair();
    const broken = brokenStream();
    const fake = make(a.fd);
    expect(cmsgSendmsg(fake as never, ["x"], anc)).toBe(1);
    fake.fd = broken.fd;
    expect(() => cmsgSendmsg(fake as never, ["y"], anc)).toThrow(expect.objectContaining({ code: "EPIPE" }));
    a.close();
    b.close();
    broken.close();
  }
  // a genuine OwnedFd whose fd property is shadowed by an own property
  const [a, b] = UnixStream.pair();
  const owned = a.intoFd();
  expect(cmsgSendmsg(owned, ["x"], anc)).toBe(1);
  const broken = brokenStream();
  Object.defineProperty(owned, "fd", { value: broken.fd });
  expect(() => cmsgSendmsg(owned, ["y"], anc)).toThrow(expect.objectContaining({ code: "EPIPE" }));
  owned.close();
  b.close();
  broken.close();
});
