/**
 * fromFd takes only an AF_UNIX socket of its own type: the kernel silently drops SCM_RIGHTS sent on a
 * TCP or UDP socket, so accepting one would make every send "succeed" with no fds delivered.
 * Linux only (the raw TCP/UDP sockets are built with this file's own libc bindings, sockaddr_in layout).
 */
import { describe, expect, test } from "bun:test";
import { dlopen, ptr } from "bun:ffi";
import { OwnedFd, UnixDatagram, UnixListener, UnixSeqpacket, UnixSeqpacketListener, UnixStream } from "../src/index.ts";
import { abi } from "../src/platform/index.ts";
import { dupRaw, isOpen } from "./fixtures/libc.ts";

const lib = dlopen(abi.libName, {
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  listen: { args: ["i32", "i32"], returns: "i32" },
  connect: { args: ["i32", "ptr", "u32"], returns: "i32" },
  getsockname: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
}).symbols;

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;

/** struct sockaddr_in for 127.0.0.1:port (Linux: family u16 host order, port and address network order). */
function loopback(port: number): Uint8Array {
  const sa = new Uint8Array(16);
  const v = new DataView(sa.buffer);
  v.setUint16(0, AF_INET, true);
  v.setUint16(2, port, false);
  sa.set([127, 0, 0, 1], 4);
  return sa;
}

function check(r: number, what: string): number {
  if (r < 0) throw new Error(`${what} failed`);
  return r;
}

/** A listening TCP socket on 127.0.0.1 and its port. */
function tcpListener(): { fd: number; port: number } {
  const fd = check(lib.socket(AF_INET, SOCK_STREAM, 0), "socket");
  const sa = loopback(0);
  check(lib.bind(fd, ptr(sa), 16), "bind");
  check(lib.listen(fd, 8), "listen");
  const out = new Uint8Array(16);
  const len = new Uint32Array([16]);
  check(lib.getsockname(fd, ptr(out), ptr(len)), "getsockname");
  return { fd, port: new DataView(out.buffer).getUint16(2, false) };
}

function connected(type: number, port: number): number {
  const fd = check(lib.socket(AF_INET, type, 0), "socket");
  check(lib.connect(fd, ptr(loopback(port)), 16), "connect");
  return fd;
}

type FromFd = (fd: OwnedFd) => { close(): void };
const CASES: [string, FromFd, "tcp" | "udp" | "tcp-listener"][] = [
  ["UnixStream.fromFd(connected TCP)", (f) => UnixStream.fromFd(f), "tcp"],
  ["UnixStream.fromFd(TCP listener)", (f) => UnixStream.fromFd(f), "tcp-listener"],
  ["UnixDatagram.fromFd(connected UDP)", (f) => UnixDatagram.fromFd(f), "udp"],
  ["UnixSeqpacket.fromFd(connected TCP)", (f) => UnixSeqpacket.fromFd(f), "tcp"],
  ["UnixSeqpacket.fromFd(connected UDP)", (f) => UnixSeqpacket.fromFd(f), "udp"],
  ["UnixListener.fromFd(TCP listener)", (f) => UnixListener.fromFd(f), "tcp-listener"],
  ["UnixSeqpacketListener.fromFd(TCP listener)", (f) => UnixSeqpacketListener.fromFd(f), "tcp-listener"],
];

describe("fromFd refuses non-Unix sockets with ERR_INVALID_ARG_VALUE (the OwnedFd stays the caller's)", () => {
  for (const [name, fromFd, kind] of CASES) {
    test(name, () => {
      const listener = tcpListener();
      const fd = kind === "tcp-listener" ? listener.fd : connected(kind === "tcp" ? SOCK_STREAM : SOCK_DGRAM, listener.port);
      const owned = OwnedFd.from(fd);
      try {
        let err: unknown;
        try {
          fromFd(owned).close();
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(TypeError);
        expect((err as { code?: string }).code).toBe("ERR_INVALID_ARG_VALUE");
        expect((err as Error).message).toContain("not an AF_UNIX socket (AF_INET)");
        expect(owned.closed).toBe(false);
        expect(isOpen(fd)).toBe(true);
      } finally {
        owned.close();
        if (fd !== listener.fd) lib.close(listener.fd);
      }
    });
  }
});

describe("fromFd still takes AF_UNIX sockets of its type, and refuses the wrong type", () => {
  test("each socket kind round-trips through intoFd/fromFd", () => {
    const [a, b] = UnixStream.pair();
    const s = UnixStream.fromFd(a.intoFd());
    const [c, d] = UnixDatagram.pair();
    const dg = UnixDatagram.fromFd(c.intoFd());
    const [e, f] = UnixSeqpacket.pair();
    const sp = UnixSeqpacket.fromFd(e.intoFd());
    for (const x of [s, b, dg, d, sp, f]) x.close();
  });

  test("listeners from a bound AF_UNIX listener's fd", () => {
    const path = `/tmp/ua-fromfd-${process.pid}-${Math.random().toString(36).slice(2)}.sock`;
    const l = UnixListener.bindSync(path, { unlinkOnClose: true });
    const owned = OwnedFd.from(dupRaw(l.fd));
    const l2 = UnixListener.fromFd(owned);
    expect(() => UnixSeqpacketListener.fromFd(owned)).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARG_VALUE" }));
    l2.close();
    l.close();
  });

  test("a datagram socket is refused by UnixStream.fromFd (type check)", () => {
    const [a, b] = UnixDatagram.pair();
    const owned = a.intoFd();
    expect(() => UnixStream.fromFd(owned)).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARG_VALUE" }));
    owned.close();
    b.close();
  });
});
