/**
 * Internal consistency of every ABI table, plus snapshot-style asserts of the darwin/freebsd values
 * (those tables cannot be exercised on this host, so a typo must at least break a test).
 */
import { describe, expect, test } from "bun:test";
import type { Abi, Field } from "../src/platform/abi.ts";
import { ABIS } from "../src/platform/index.ts";
import { abi as darwinX64 } from "../src/platform/darwin-x64.ts";
import { abi as darwinArm64 } from "../src/platform/darwin-arm64.ts";
import { abi as freebsdX64 } from "../src/platform/freebsd-x64.ts";
import { bufferSizeForRights } from "../src/cmsg/sizes.ts";

// Every table the library ships (ABIS is the one list; a new ABI is covered here without editing this file).
const TABLES: readonly Abi[] = Object.values(ABIS);

/** docs/design.md, "Wire format": rights(1) / rights(253) per OS. */
const RIGHTS_SIZES: Record<Abi["os"], [number, number]> = { linux: [24, 1032], darwin: [16, 1024], freebsd: [24, 1032] };

type Span = { name: string; offset: number; size: number };

function span(name: string, f: { offset: number; size: number }): Span {
  return { name, offset: f.offset, size: f.size };
}

function expectWithin(spans: Span[], size: number, what: string): void {
  for (const s of spans) {
    expect({ what, field: s.name, ok: Number.isInteger(s.offset) && s.offset >= 0 && s.size > 0 && s.offset + s.size <= size }).toEqual({
      what,
      field: s.name,
      ok: true,
    });
  }
}

function expectNoOverlap(spans: Span[], what: string): void {
  const sorted = [...spans].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    expect({ what, pair: `${prev.name}/${cur.name}`, overlap: prev.offset + prev.size > cur.offset }).toEqual({
      what,
      pair: `${prev.name}/${cur.name}`,
      overlap: false,
    });
  }
}

function expectPointer(f: Field, what: string): void {
  expect({ what, size: f.size, aligned: f.offset % 8 === 0 }).toEqual({ what, size: 8, aligned: true });
}

const isPowerOfTwo = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;

describe.each(TABLES.map((a) => [a.name, a] as const))("%s", (_name, abi) => {
  test("name matches os/arch/libc, LP64 little-endian", () => {
    const libcPart = abi.os === "linux" ? `-${abi.libc === "glibc" ? "gnu" : abi.libc}` : "";
    expect(abi.name).toBe(`${abi.os}-${abi.arch}${libcPart}` as Abi["name"]);
    if (abi.os === "linux") expect(["glibc", "musl"]).toContain(abi.libc);
    else expect(abi.libc).toBe(abi.os);
    expect(abi.pointerSize).toBe(8);
    expect(abi.littleEndian).toBe(true);
    expect(abi.errnoSymbol).toBe(abi.os === "linux" ? "__errno_location" : "__error");
  });

  test("libName is a bare soname (never an absolute path)", () => {
    expect(abi.libName.length).toBeGreaterThan(0);
    expect(abi.libName.includes("/")).toBe(false);
  });

  test("msghdr: fields inside, no overlap, pointers 8-byte aligned", () => {
    const m = abi.msghdr;
    const spans = (["name", "namelen", "iov", "iovlen", "control", "controllen", "flags"] as const).map((k) => span(k, m[k]));
    expectWithin(spans, m.size, "msghdr");
    expectNoOverlap(spans, "msghdr");
    expectPointer(m.name, "msghdr.name");
    expectPointer(m.iov, "msghdr.iov");
    expectPointer(m.control, "msghdr.control");
    expect(m.size % 8).toBe(0);
    // every LP64 ABI here puts the three pointers at 0/16/32
    expect([m.name.offset, m.iov.offset, m.control.offset]).toEqual([0, 16, 32]);
  });

  test("iovec: {base ptr, len size_t}, 16 bytes", () => {
    const v = abi.iovec;
    expectWithin([span("base", v.base), span("len", v.len)], v.size, "iovec");
    expectNoOverlap([span("base", v.base), span("len", v.len)], "iovec");
    expectPointer(v.base, "iovec.base");
    expect(v.size).toBe(16);
    expect(v.len.size).toBe(8);
  });

  test("cmsghdr: header fields, headerLen, alignment", () => {
    const c = abi.cmsg;
    const spans = [span("len", c.len), span("level", c.level), span("type", c.type)];
    expectWithin(spans, c.headerSize, "cmsghdr");
    expectNoOverlap(spans, "cmsghdr");
    expect(c.len.offset).toBe(0);
    expect(c.level.size).toBe(4);
    expect(c.type.size).toBe(4);
    expect(c.headerLen).toBeGreaterThanOrEqual(c.headerSize);
    expect(isPowerOfTwo(c.align)).toBe(true);
    expect(c.headerLen % c.align).toBe(0);
  });

  test("bufferSizeForRights matches the sizes in docs/design.md, Wire format", () => {
    const [one, max] = RIGHTS_SIZES[abi.os];
    expect(bufferSizeForRights(abi, 1)).toBe(one);
    expect(bufferSizeForRights(abi, 253)).toBe(max);
    expect(bufferSizeForRights(abi, 0)).toBe(abi.cmsg.headerLen);
  });

  test("other structs: fields inside their struct, no overlap", () => {
    if (abi.ucred) {
      const u = abi.ucred;
      const s = [span("pid", u.pid), span("uid", u.uid), span("gid", u.gid)];
      expectWithin(s, u.size, "ucred");
      expectNoOverlap(s, "ucred");
    }
    if (abi.xucred) {
      const x = abi.xucred;
      // groups is gid_t[16] (NGROUPS on darwin, XU_NGROUPS on freebsd): the whole array must fit
      const s = [span("version", x.version), span("uid", x.uid), span("ngroups", x.ngroups), { name: "groups[16]", offset: x.groups.offset, size: 16 * x.groups.size }];
      expectWithin(s, x.size, "xucred");
      expectNoOverlap(s, "xucred");
      expect(x.groups.offset % x.groups.size).toBe(0);
    }
    const r = abi.rlimit;
    expectWithin([span("cur", r.cur), span("max", r.max)], r.size, "rlimit");
    expectNoOverlap([span("cur", r.cur), span("max", r.max)], "rlimit");
    expect(r.size).toBe(16);
    expect(r.infinity).toBe(abi.os === "linux" ? 2n ** 64n - 1n : 2n ** 63n - 1n);

    const p = abi.pollfd;
    const ps = [span("fd", p.fd), span("events", p.events), span("revents", p.revents)];
    expectWithin(ps, p.size, "pollfd");
    expectNoOverlap(ps, "pollfd");
    expect(p.size).toBe(8);

    if (abi.epollEvent) {
      const e = abi.epollEvent;
      const es = [span("events", e.events), span("data", e.data)];
      expectWithin(es, e.size, "epoll_event");
      expectNoOverlap(es, "epoll_event");
    }
    if (abi.kevent) {
      const k = abi.kevent;
      const ks = (["ident", "filter", "flags", "fflags", "data", "udata"] as const).map((n) => span(n, k[n]));
      expectWithin(ks, k.size, "kevent");
      expectNoOverlap(ks, "kevent");
      expectPointer(k.ident, "kevent.ident");
      expectPointer(k.udata, "kevent.udata");
      expect(k.data.size).toBe(8);
      expect(k.size % 8).toBe(0);
    }
  });

  test("sockaddr layouts", () => {
    const un = abi.sockaddrUn;
    expect(un.pathOffset + un.pathSize).toBeLessThanOrEqual(un.size);
    expect(un.family.offset + un.family.size).toBeLessThanOrEqual(un.pathOffset);
    const bsd = abi.os !== "linux";
    expect(un.len === null).toBe(!bsd);
    expect(un.abstractNamespace).toBe(!bsd);
    if (un.len) {
      expect(un.len).toEqual({ offset: 0, size: 1 });
      expect(un.family).toEqual({ offset: 1, size: 1 });
    }
    const in4 = abi.sockaddrIn;
    expect(in4.size).toBe(16);
    expect(in4.port).toBe(2);
    expect(in4.addr + 4).toBeLessThanOrEqual(in4.size);
    expect(in4.family.offset + in4.family.size).toBeLessThanOrEqual(in4.port);
    const in6 = abi.sockaddrIn6;
    expect(in6.size).toBe(28);
    expect(in6.port).toBe(2);
    expect(in6.addr + 16).toBeLessThanOrEqual(in6.size);
    expect(in6.family.offset + in6.family.size).toBeLessThanOrEqual(in6.port);
    expect(in4.family).toEqual(un.family);
    expect(in6.family).toEqual(un.family);
  });

  test("all errno values are distinct positive integers", () => {
    const values = Object.values(abi.errno);
    for (const v of values) {
      expect(Number.isInteger(v)).toBe(true);
      expect(v).toBeGreaterThan(0);
    }
    expect(new Set(values).size).toBe(values.length);
    // 40 names in ErrnoName, every one present
    expect(values.length).toBe(40);
  });

  test("all constants are integers", () => {
    for (const [k, v] of Object.entries(abi.constants)) {
      expect({ k, int: Number.isInteger(v) }).toEqual({ k, int: true });
    }
  });

  test("cloexec / sigpipe strategies match the constants", () => {
    const k = abi.constants;
    if (abi.cloexec === "msg_cmsg_cloexec") expect(k.MSG_CMSG_CLOEXEC).toBeGreaterThan(0);
    else {
      expect(k.FIOCLEX).toBeGreaterThan(0);
      expect(k.MSG_CMSG_CLOEXEC).toBe(0);
    }
    if (abi.sigpipe === "msg_nosignal") expect(k.MSG_NOSIGNAL).toBeGreaterThan(0);
    else expect(k.SO_NOSIGPIPE).toBeGreaterThan(0);
    expect(k.FD_CLOEXEC).toBe(1);
    expect(k.O_CLOEXEC).toBeGreaterThan(0);
    expect(k.F_DUPFD_CLOEXEC).toBeGreaterThan(0);
  });

  test("feature flags match the constants", () => {
    const k = abi.constants;
    if (abi.hasSockFlags) {
      expect(k.SOCK_NONBLOCK).toBeGreaterThan(0);
      expect(k.SOCK_CLOEXEC).toBeGreaterThan(0);
    } else {
      expect(k.SOCK_NONBLOCK).toBe(0);
      expect(k.SOCK_CLOEXEC).toBe(0);
      expect(abi.hasAccept4).toBe(false);
    }
    if (abi.passCredentials) {
      expect(abi.ucred).not.toBeNull();
      expect(k.SCM_CREDENTIALS).toBeGreaterThan(0);
      expect(k.SO_PASSCRED).toBeGreaterThan(0);
    } else {
      expect(k.SCM_CREDENTIALS).toBe(-1);
      expect(k.SO_PASSCRED).toBe(-1);
    }
    expect(k.SCM_RIGHTS).toBe(1);
    expect(abi.os === "linux" ? k.SOL_SOCKET === 1 : k.SOL_SOCKET === 0xffff).toBe(true);
  });

  test("epoll iff linux, kqueue iff not", () => {
    const k = abi.constants;
    const linux = abi.os === "linux";
    expect(abi.epollEvent !== null).toBe(linux);
    expect(abi.kevent !== null).toBe(!linux);
    expect(abi.xucred !== null).toBe(!linux);
    const epoll = [k.EPOLL_CLOEXEC, k.EPOLL_CTL_ADD, k.EPOLL_CTL_DEL, k.EPOLL_CTL_MOD, k.EPOLLIN, k.EPOLLOUT, k.EPOLLERR, k.EPOLLHUP, k.EPOLLRDHUP, k.EPOLLONESHOT, k.EPOLLET];
    const kq = [k.EVFILT_READ, k.EVFILT_WRITE, k.EVFILT_USER, k.EV_ADD, k.EV_DELETE, k.EV_ENABLE, k.EV_DISABLE, k.EV_ONESHOT, k.EV_CLEAR, k.EV_EOF, k.EV_ERROR, k.NOTE_TRIGGER];
    for (const v of epoll) expect(v !== 0).toBe(linux);
    for (const v of kq) expect(v !== 0).toBe(!linux);
    if (linux) {
      expect(abi.epollEvent!.size).toBe(abi.arch === "x64" ? 12 : 16);
      expect(abi.epollEvent!.data.offset).toBe(abi.arch === "x64" ? 4 : 8);
    } else {
      expect(k.EVFILT_READ).toBe(-1);
      expect(k.EVFILT_WRITE).toBe(-2);
    }
  });

  test("send limits and fd budget", () => {
    expect(abi.maxFdsPerSend).toBeGreaterThan(0);
    if (abi.maxSendControlBytes !== null) {
      expect(bufferSizeForRights(abi, abi.maxFdsPerSend)).toBeLessThanOrEqual(abi.maxSendControlBytes);
      expect(bufferSizeForRights(abi, abi.maxFdsPerSend + 1)).toBeGreaterThan(abi.maxSendControlBytes);
    }
    if (abi.libc === "musl") {
      expect(abi.maxSendControlBytes).toBe(1024);
      expect(abi.maxFdsPerSend).toBe(252);
      expect(bufferSizeForRights(abi, 252)).toBeLessThanOrEqual(1024);
      expect(bufferSizeForRights(abi, 253)).toBeGreaterThan(1024);
    } else {
      expect(abi.maxSendControlBytes).toBeNull();
      expect(abi.maxFdsPerSend).toBe(253);
    }
    if (abi.fdBudget.kind === "rlimit") {
      expect(abi.os).toBe("darwin");
      expect(abi.fdBudget).toEqual({ kind: "rlimit", floor: 253, ceiling: 1048576 });
    } else {
      expect(abi.fdBudget).toEqual({ kind: "fixed", fds: 253 });
    }
  });
});

describe("darwin tables (snapshot of verified values)", () => {
  test("x64 and arm64 differ only in name and arch", () => {
    const { name: n1, arch: a1, ...x } = darwinX64;
    const { name: n2, arch: a2, ...y } = darwinArm64;
    expect([n1, a1, n2, a2]).toEqual(["darwin-x64", "x64", "darwin-arm64", "arm64"]);
    expect(x).toEqual(y);
  });

  test.each([darwinX64, darwinArm64])("$name", (abi) => {
    expect(abi).toMatchObject({
      os: "darwin",
      libc: "darwin",
      libName: "libSystem.B.dylib",
      errnoSymbol: "__error",
      msghdr: {
        size: 48,
        name: { offset: 0, size: 8 }, namelen: { offset: 8, size: 4 },
        iov: { offset: 16, size: 8 }, iovlen: { offset: 24, size: 4 },
        control: { offset: 32, size: 8 }, controllen: { offset: 40, size: 4 },
        flags: { offset: 44, size: 4 },
      },
      cmsg: { headerSize: 12, headerLen: 12, align: 4, len: { offset: 0, size: 4 }, level: { offset: 4, size: 4 }, type: { offset: 8, size: 4 } },
      ucred: null,
      xucred: { size: 76, version: { offset: 0, size: 4 }, uid: { offset: 4, size: 4 }, ngroups: { offset: 8, size: 2 }, groups: { offset: 12, size: 4 } },
      rlimit: { size: 16, infinity: 0x7fff_ffff_ffff_ffffn },
      sockaddrUn: { size: 106, len: { offset: 0, size: 1 }, family: { offset: 1, size: 1 }, pathOffset: 2, pathSize: 104, abstractNamespace: false },
      sockaddrIn: { size: 16, family: { offset: 1, size: 1 }, port: 2, addr: 4 },
      sockaddrIn6: { size: 28, family: { offset: 1, size: 1 }, port: 2, addr: 8 },
      epollEvent: null,
      kevent: {
        size: 32,
        ident: { offset: 0, size: 8 }, filter: { offset: 8, size: 2 }, flags: { offset: 10, size: 2 },
        fflags: { offset: 12, size: 4 }, data: { offset: 16, size: 8 }, udata: { offset: 24, size: 8 },
      },
      cloexec: "ioctl_fioclex",
      sigpipe: "so_nosigpipe",
      fdBudget: { kind: "rlimit", floor: 253, ceiling: 1048576 },
      maxFdsPerSend: 253,
      maxSendControlBytes: null,
      passCredentials: false,
      hasAccept4: false,
      hasSockFlags: false,
      hasSeqpacket: false,
    });
    expect(abi.constants).toMatchObject({
      AF_UNIX: 1, AF_INET: 2, AF_INET6: 30,
      SOCK_STREAM: 1, SOCK_DGRAM: 2, SOCK_SEQPACKET: 5, SOCK_NONBLOCK: 0, SOCK_CLOEXEC: 0,
      SOL_SOCKET: 0xffff, SCM_RIGHTS: 1, SCM_CREDENTIALS: -1, SO_PASSCRED: -1, SO_PEERCRED: -1, SO_PASSRIGHTS: -1,
      SO_NOSIGPIPE: 0x1022, SO_TYPE: 0x1008, SO_DOMAIN: -1, SO_ACCEPTCONN: 0x2, SO_ERROR: 0x1007,
      SO_SNDBUF: 0x1001, SO_RCVBUF: 0x1002, SO_REUSEADDR: 0x4,
      SOL_LOCAL: 0, LOCAL_PEERCRED: 1, LOCAL_PEERPID: 2,
      MSG_CTRUNC: 0x20, MSG_TRUNC: 0x10, MSG_DONTWAIT: 0x80, MSG_NOSIGNAL: 0x80000, MSG_CMSG_CLOEXEC: 0, MSG_PEEK: 0x2,
      F_GETFD: 1, F_SETFD: 2, F_GETFL: 3, F_SETFL: 4, F_DUPFD_CLOEXEC: 67, FD_CLOEXEC: 1,
      O_NONBLOCK: 0x4, O_CLOEXEC: 0x1000000, O_RDONLY: 0, O_WRONLY: 1, O_RDWR: 2,
      FIOCLEX: 0x20006601, FIONBIO: 0x8004667e, RLIMIT_NOFILE: 8,
      SHUT_RD: 0, SHUT_WR: 1, SHUT_RDWR: 2,
      POLLIN: 0x1, POLLOUT: 0x4, POLLERR: 0x8, POLLHUP: 0x10, POLLNVAL: 0x20,
      EVFILT_READ: -1, EVFILT_WRITE: -2, EVFILT_USER: -10,
      EV_ADD: 0x1, EV_DELETE: 0x2, EV_ENABLE: 0x4, EV_DISABLE: 0x8, EV_ONESHOT: 0x10, EV_CLEAR: 0x20,
      EV_EOF: 0x8000, EV_ERROR: 0x4000, NOTE_TRIGGER: 0x01000000,
      SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13, SIG_DFL: 0,
    });
    expect(abi.errno).toEqual({
      EPERM: 1, ENOENT: 2, EINTR: 4, EIO: 5, EBADF: 9, ENOMEM: 12, EACCES: 13, EFAULT: 14, EEXIST: 17,
      ENOTDIR: 20, EINVAL: 22, ENFILE: 23, EMFILE: 24, ENOSPC: 28, EPIPE: 32, ERANGE: 34,
      EAGAIN: 35, EINPROGRESS: 36, EALREADY: 37, ENOTSOCK: 38, EDESTADDRREQ: 39, EMSGSIZE: 40,
      EPROTOTYPE: 41, ENOPROTOOPT: 42, EPROTONOSUPPORT: 43, EAFNOSUPPORT: 47, EADDRINUSE: 48,
      EADDRNOTAVAIL: 49, ENETDOWN: 50, ECONNABORTED: 53, ECONNRESET: 54, ENOBUFS: 55, EISCONN: 56,
      ENOTCONN: 57, ETOOMANYREFS: 59, ETIMEDOUT: 60, ECONNREFUSED: 61, ENAMETOOLONG: 63, ENOSYS: 78,
      EOPNOTSUPP: 102,
    });
  });
});

describe("freebsd-x64 table (snapshot of verified values)", () => {
  test("layouts and strategies", () => {
    expect(freebsdX64).toMatchObject({
      name: "freebsd-x64",
      os: "freebsd",
      arch: "x64",
      libc: "freebsd",
      libName: "libc.so.7",
      errnoSymbol: "__error",
      msghdr: {
        size: 48,
        name: { offset: 0, size: 8 }, namelen: { offset: 8, size: 4 },
        iov: { offset: 16, size: 8 }, iovlen: { offset: 24, size: 4 },
        control: { offset: 32, size: 8 }, controllen: { offset: 40, size: 4 },
        flags: { offset: 44, size: 4 },
      },
      cmsg: { headerSize: 12, headerLen: 16, align: 8, len: { offset: 0, size: 4 }, level: { offset: 4, size: 4 }, type: { offset: 8, size: 4 } },
      ucred: null,
      xucred: { size: 88, version: { offset: 0, size: 4 }, uid: { offset: 4, size: 4 }, ngroups: { offset: 8, size: 2 }, groups: { offset: 12, size: 4 } },
      rlimit: { size: 16, infinity: 0x7fff_ffff_ffff_ffffn },
      sockaddrUn: { size: 106, len: { offset: 0, size: 1 }, family: { offset: 1, size: 1 }, pathOffset: 2, pathSize: 104, abstractNamespace: false },
      sockaddrIn: { size: 16, family: { offset: 1, size: 1 }, port: 2, addr: 4 },
      sockaddrIn6: { size: 28, family: { offset: 1, size: 1 }, port: 2, addr: 8 },
      epollEvent: null,
      kevent: {
        size: 64,
        ident: { offset: 0, size: 8 }, filter: { offset: 8, size: 2 }, flags: { offset: 10, size: 2 },
        fflags: { offset: 12, size: 4 }, data: { offset: 16, size: 8 }, udata: { offset: 24, size: 8 },
      },
      cloexec: "msg_cmsg_cloexec",
      sigpipe: "msg_nosignal",
      fdBudget: { kind: "fixed", fds: 253 },
      maxFdsPerSend: 253,
      maxSendControlBytes: null,
      passCredentials: false,
      hasAccept4: true,
      hasSockFlags: true,
      hasSeqpacket: true,
    });
  });

  test("constants and errno", () => {
    expect(freebsdX64.constants).toMatchObject({
      AF_UNIX: 1, AF_INET: 2, AF_INET6: 28,
      SOCK_STREAM: 1, SOCK_DGRAM: 2, SOCK_SEQPACKET: 5, SOCK_NONBLOCK: 0x20000000, SOCK_CLOEXEC: 0x10000000,
      SOL_SOCKET: 0xffff, SCM_RIGHTS: 1, SCM_CREDENTIALS: -1, SO_PASSCRED: -1, SO_PEERCRED: -1, SO_PASSRIGHTS: -1,
      SO_NOSIGPIPE: 0x0800, SO_TYPE: 0x1008, SO_DOMAIN: 0x1019, SO_ACCEPTCONN: 0x2, SO_ERROR: 0x1007,
      SO_SNDBUF: 0x1001, SO_RCVBUF: 0x1002, SO_REUSEADDR: 0x4,
      SOL_LOCAL: 0, LOCAL_PEERCRED: 1, LOCAL_PEERPID: -1,
      MSG_CTRUNC: 0x20, MSG_TRUNC: 0x10, MSG_DONTWAIT: 0x80, MSG_NOSIGNAL: 0x20000, MSG_CMSG_CLOEXEC: 0x40000, MSG_PEEK: 0x2,
      F_GETFD: 1, F_SETFD: 2, F_GETFL: 3, F_SETFL: 4, F_DUPFD_CLOEXEC: 17, FD_CLOEXEC: 1,
      O_NONBLOCK: 0x4, O_CLOEXEC: 0x00100000, O_RDONLY: 0, O_WRONLY: 1, O_RDWR: 2,
      FIOCLEX: 0x20006601, FIONBIO: 0x8004667e, RLIMIT_NOFILE: 8,
      SHUT_RD: 0, SHUT_WR: 1, SHUT_RDWR: 2,
      POLLIN: 0x1, POLLOUT: 0x4, POLLERR: 0x8, POLLHUP: 0x10, POLLNVAL: 0x20,
      EVFILT_READ: -1, EVFILT_WRITE: -2, EVFILT_USER: -11,
      EV_ADD: 0x1, EV_DELETE: 0x2, EV_ENABLE: 0x4, EV_DISABLE: 0x8, EV_ONESHOT: 0x10, EV_CLEAR: 0x20,
      EV_EOF: 0x8000, EV_ERROR: 0x4000, NOTE_TRIGGER: 0x01000000,
      SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13, SIG_DFL: 0,
    });
    expect(freebsdX64.errno).toEqual({ ...darwinX64.errno, EOPNOTSUPP: 45 });
  });
});
