/**
 * A fake darwin / FreeBSD libc + kernel for the calls unix-ancillary makes, so the library's real code
 * paths for those ABIs run on Linux (test tool, not shipped; see docs/platforms.md "Fake libc").
 *
 * - Every struct the library hands over (msghdr, iovec, cmsghdr, kevent, sockaddr_un, pollfd) is read
 *   through the ABI table's offsets, and bytes the table calls padding must be zero; every struct the
 *   kernel writes back (received control data, xucred, rlimit, kevent, sockaddr_un) is written with the
 *   table's layout, whole (FreeBSD's kevent ext[] zeroed). A mismatch is recorded as a violation (tests
 *   assert none) and, where a kernel would refuse it, the call fails with EINVAL.
 * - Sockets are an in-memory model: AF_UNIX stream/datagram/seqpacket pairs, a path namespace for
 *   bind/connect/listen/accept, queued records carrying in-flight file references, per-OS control
 *   rules (xnu: one SCM_RIGHTS cmsg per send, cmsg_len == msg_controllen; FreeBSD: a list of them,
 *   16-byte CMSG_LEN(0), 8-byte alignment) and truncation (MSG_CTRUNC; fds that do not fit are closed
 *   by the kernel, whole fds only).
 * - kqueue is backed by a real pipe: the main thread's fake evaluates the knotes after every call that
 *   can change readiness and writes fired events into the pipe; the reactor Worker's own instance of
 *   this module answers its blocking kevent() by reading that pipe (its fd number is the kqueue's).
 * - Knobs for kernel-shaped failures: EINTR on the next N calls of a function, a failing FIOCLEX,
 *   the RLIMIT_NOFILE values, the identity (pid/uid/groups) sockets are created under.
 */
import { dlopen as realDlopen, ptr, read, toArrayBuffer, type FFIFunction, type Pointer } from "bun:ffi";
import type { Abi, AbiName, Field } from "../../src/platform/abi.ts";
import { abi as darwinX64 } from "../../src/platform/darwin-x64.ts";
import { abi as darwinArm64 } from "../../src/platform/darwin-arm64.ts";
import { abi as freebsdX64 } from "../../src/platform/freebsd-x64.ts";
import { abi as linuxX64Gnu } from "../../src/platform/linux-x64-gnu.ts";
import { abi as linuxX64Musl } from "../../src/platform/linux-x64-musl.ts";
import { abi as linuxArm64Gnu } from "../../src/platform/linux-arm64-gnu.ts";
import { abi as linuxArm64Musl } from "../../src/platform/linux-arm64-musl.ts";
import { detectAbiName } from "../../src/platform/detect.ts";

export const FAKE_ABIS: Partial<Record<AbiName, Abi>> = { "darwin-x64": darwinX64, "darwin-arm64": darwinArm64, "freebsd-x64": freebsdX64 };

/** Functions each fake OS's libc exports (dlopen of any other name throws, like Bun's). */
const EXPORTS: Record<"darwin" | "freebsd", ReadonlySet<string>> = {
  darwin: new Set([
    "socket", "socketpair", "bind", "listen", "connect", "accept", "getsockopt", "setsockopt", "getsockname", "getpeername",
    "sendmsg", "recvmsg", "ioctl", "fcntl", "close", "read", "write", "poll", "shutdown", "unlink", "chmod", "getpid",
    "getuid", "geteuid", "getgid", "getrlimit", "__error", "pipe", "kqueue", "kevent", "getpeereid",
  ]),
  freebsd: new Set([
    "socket", "socketpair", "bind", "listen", "connect", "accept", "accept4", "getsockopt", "setsockopt", "getsockname",
    "getpeername", "sendmsg", "recvmsg", "ioctl", "fcntl", "close", "read", "write", "poll", "shutdown", "unlink", "chmod",
    "getpid", "getuid", "geteuid", "getgid", "getrlimit", "__error", "pipe", "pipe2", "dup3", "kqueue", "kevent",
    "getpeereid", "eventfd",
  ]),
};

// ---- the host's real libc, only for the kqueue pipe ------------------------------------------------

const HOST: Record<string, Abi> = { "linux-x64-gnu": linuxX64Gnu, "linux-x64-musl": linuxX64Musl, "linux-arm64-gnu": linuxArm64Gnu, "linux-arm64-musl": linuxArm64Musl };
const host = dlopen0();
function dlopen0() {
  const name = detectAbiName();
  const lib = realDlopen(HOST[name]!.libName, {
    pipe2: { args: ["ptr", "i32"], returns: "i32" },
    read: { args: ["i32", "ptr", "u64"], returns: "i64" },
    write: { args: ["i32", "ptr", "u64"], returns: "i64" },
    close: { args: ["i32"], returns: "i32" },
    __errno_location: { args: [], returns: "ptr" },
  });
  const errnoAt = lib.symbols.__errno_location()!;
  return { ...lib.symbols, errno: () => read.i32(errnoAt, 0) };
}
const HOST_EINTR = 4;
const HOST_O_CLOEXEC = 0x80000;

// ---- memory ---------------------------------------------------------------------------------------

/** `len` bytes at an FFI argument: a pointer number or a typed array passed directly. */
function mem(p: unknown, len: number, what: string, k: Kernel): Uint8Array {
  if (len === 0) return new Uint8Array(0);
  if (ArrayBuffer.isView(p)) {
    if (len > p.byteLength) k.violation(`${what}: ${len} bytes asked of a ${p.byteLength}-byte buffer`);
    return new Uint8Array(p.buffer, p.byteOffset, Math.min(len, p.byteLength));
  }
  if (typeof p !== "number" || p === 0) throw new FakeFault(`${what}: bad pointer ${String(p)}`);
  return new Uint8Array(toArrayBuffer(p as Pointer, 0, len));
}
function isNull(p: unknown): boolean {
  return p === null || p === undefined || p === 0;
}
function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}
function getField(v: DataView, at: number, f: Field): number {
  if (f.size === 2) return v.getUint16(at + f.offset, true);
  if (f.size === 4) return v.getUint32(at + f.offset, true);
  return Number(v.getBigUint64(at + f.offset, true));
}
function setField(v: DataView, at: number, f: Field, n: number): void {
  if (f.size === 2) v.setUint16(at + f.offset, n, true);
  else if (f.size === 4) v.setUint32(at + f.offset, n >>> 0, true);
  else v.setBigUint64(at + f.offset, BigInt(n), true);
}

class FakeFault extends Error {}

// ---- model ----------------------------------------------------------------------------------------

export interface Identity {
  pid: number;
  uid: number;
  gids: number[];
}

interface Rec {
  data: Uint8Array;
  off: number;
  /** In-flight rights, one list per SCM_RIGHTS message (null once delivered or when none). */
  rights: Desc[][] | null;
}

interface DescBase {
  readonly id: number;
  refs: number;
  nonblock: boolean;
}
interface SocketDesc extends DescBase {
  kind: "socket";
  type: number;
  peer: SocketDesc | null;
  /** The peer existed and is gone (EOF / EPIPE). */
  peerGone: boolean;
  queue: Rec[];
  queued: number;
  listening: boolean;
  backlog: SocketDesc[];
  path: string | null;
  shutRd: boolean;
  shutWr: boolean;
  nosigpipe: boolean;
  identity: Identity;
  peerIdentity: Identity | null;
}
interface FileDesc extends DescBase {
  kind: "file";
  name: string;
}
interface KqueueDesc extends DescBase {
  kind: "kqueue";
  realR: number;
  realW: number;
  knotes: Map<string, Knote>;
}
type Desc = SocketDesc | FileDesc | KqueueDesc;

interface Knote {
  ident: number;
  filter: number;
  flags: number;
  udata: number;
  oneshot: boolean;
}

/** The fields of one kevent record in the pipe between the threads: ident, filter, flags, fflags, data, udata. */
const REC_WORDS = 6;
const REC_BYTES = REC_WORDS * 8;
const SOCKET_BUFFER = 64 * 1024;
const FD_BASE = 1000;

export class Kernel {
  readonly abi: Abi;
  readonly K: Abi["constants"];
  /** errno numbers by name, from the table's complete list. */
  readonly E: Readonly<Record<string, number>>;
  readonly fds = new Map<number, { desc: Desc; cloexec: boolean }>();
  readonly paths = new Map<string, SocketDesc>();
  readonly kqueues = new Set<KqueueDesc>();
  readonly violations: string[] = [];
  readonly calls = new Map<string, number>();
  /** msg_controllen of the last recvmsg (the library's receive control buffer size). */
  lastRecvControllen = -1;
  /** Knobs. */
  identity: Identity = { pid: process.pid, uid: process.getuid?.() ?? 0, gids: [process.getgid?.() ?? 0] };
  rlimitNofile: { cur: bigint; max: bigint };
  readonly #eintr = new Map<string, number>();
  #fioclexFailures = 0;
  #fioclexErrno = 0;
  #fioclexSkip = 0;
  #nextId = 1;
  /** fd numbers the kernel closed itself (disposed rights of a truncated message). */
  readonly #disposed = new Set<number>();
  readonly #errno = new Int32Array(new ArrayBuffer(4));
  readonly errnoPtr = ptr(this.#errno);

  constructor(abi: Abi) {
    this.abi = abi;
    this.K = abi.constants;
    this.E = Object.fromEntries(Object.entries(abi.errnoNames).map(([n, name]) => [name, Number(n)]));
    // macOS's default soft limit is 256; FreeBSD's budget is fixed, so the value matters only on darwin.
    this.rlimitNofile = { cur: 256n, max: abi.rlimit.infinity };
  }

  // ---- knobs and inspection (for tests) ----

  /** The next `n` calls of `fn` fail with EINTR before doing anything. */
  injectEintr(fn: string, n = 1): void {
    this.#eintr.set(fn, (this.#eintr.get(fn) ?? 0) + n);
  }
  /** After `after` more successful ioctl(FIOCLEX) calls, the next `n` fail with `errnoName`. */
  failFioclex(n = 1, errnoName = "EBADF", after = 0): void {
    this.#fioclexFailures = n;
    this.#fioclexErrno = this.E[errnoName]!;
    this.#fioclexSkip = after;
  }
  violation(msg: string): void {
    this.violations.push(msg);
  }
  /** A regular "file": a new fd the test owns. */
  openFile(name: string): number {
    return this.#install({ id: this.#nextId++, refs: 0, nonblock: false, kind: "file", name }, false);
  }
  /** fd -> what it is, for assertions. */
  describeFd(fd: number): { kind: string; name?: string; cloexec: boolean; id: number } | null {
    const e = this.fds.get(fd);
    if (!e) return null;
    return { kind: e.desc.kind, name: e.desc.kind === "file" ? e.desc.name : undefined, cloexec: e.cloexec, id: e.desc.id };
  }
  /** Open fd numbers (excluding kqueues, which live in the real fd table). */
  openFds(): number[] {
    return [...this.fds.entries()].filter(([, e]) => e.desc.kind !== "kqueue").map(([n]) => n).sort((a, b) => a - b);
  }
  /** Descriptions still referenced from anywhere (fd table or in flight), kqueues aside. */
  liveDescriptions(): number {
    const seen = new Set<number>();
    const walk = (d: Desc): void => {
      if (seen.has(d.id)) return;
      seen.add(d.id);
      if (d.kind === "socket") for (const r of d.queue) for (const x of (r.rights ?? []).flat()) walk(x);
    };
    for (const e of this.fds.values()) if (e.desc.kind !== "kqueue") walk(e.desc);
    return seen.size;
  }

  // ---- plumbing ----

  #fail(e: number): number {
    this.#errno[0] = e;
    return -1;
  }
  /** -1 with errno set to `name` (for the dlopen wrapper's bad-pointer path). */
  failWith(name: string): number {
    return this.#fail(this.E[name]!);
  }
  #lowestFree(): number {
    let n = FD_BASE;
    while (this.fds.has(n)) n++;
    return n;
  }
  #install(desc: Desc, cloexec: boolean, at?: number): number {
    const fd = at ?? this.#lowestFree();
    if (this.fds.has(fd)) throw new Error(`fake kernel: fd ${fd} already in use`);
    this.#disposed.delete(fd);
    desc.refs++;
    this.fds.set(fd, { desc, cloexec });
    return fd;
  }
  #drop(desc: Desc): void {
    if (--desc.refs > 0) return;
    if (desc.kind === "socket") {
      const q = desc.queue;
      desc.queue = [];
      desc.queued = 0;
      for (const r of q) for (const x of (r.rights ?? []).flat()) this.#drop(x);
      for (const pending of desc.backlog) this.#drop(pending);
      desc.backlog = [];
      if (desc.path !== null && this.paths.get(desc.path) === desc) {
        // the name stays in the file system until unlink, but nobody listens behind it any more
        desc.listening = false;
      }
      const p = desc.peer;
      if (p) {
        p.peer = null;
        p.peerGone = true;
      }
      desc.peer = null;
    } else if (desc.kind === "kqueue") {
      this.kqueues.delete(desc);
      host.close(desc.realR);
      host.close(desc.realW);
    }
  }
  /** A close the kernel does on its own (not through the library). */
  #kernelClose(fd: number): void {
    const e = this.fds.get(fd)!;
    this.fds.delete(fd);
    this.#disposed.add(fd);
    this.#drop(e.desc);
  }
  #entry(fd: number) {
    return this.fds.get(fd);
  }
  #socket(fd: number): SocketDesc | number {
    const e = this.fds.get(fd);
    if (!e) return this.E.EBADF;
    if (e.desc.kind !== "socket") return this.E.ENOTSOCK;
    return e.desc;
  }
  #newSocket(type: number, nonblock: boolean): SocketDesc {
    return {
      id: this.#nextId++, refs: 0, nonblock, kind: "socket", type, peer: null, peerGone: false, queue: [], queued: 0,
      listening: false, backlog: [], path: null, shutRd: false, shutWr: false, nosigpipe: false,
      identity: { ...this.identity, gids: [...this.identity.gids] }, peerIdentity: null,
    };
  }
  #checkPads(v: DataView, at: number, size: number, fields: readonly { offset: number; size: number }[], what: string): void {
    const covered = new Uint8Array(size);
    for (const f of fields) covered.fill(1, f.offset, f.offset + f.size);
    for (let i = 0; i < size; i++) {
      if (!covered[i] && v.getUint8(at + i) !== 0) {
        this.violation(`${what}: padding byte ${i} is ${v.getUint8(at + i)} (the table says nothing lives there)`);
        return;
      }
    }
  }
  /** Splits the socket type argument into the type and the OS's type flags. */
  #sockType(arg: number): { type: number; cloexec: boolean; nonblock: boolean } | number {
    const K = this.K;
    const flagBits = K.SOCK_CLOEXEC | K.SOCK_NONBLOCK;
    if (flagBits === 0 && (arg & ~0xff) !== 0) {
      this.violation(`socket type 0x${arg.toString(16)} carries flag bits on ${this.abi.os}, which has none`);
      return this.E.EINVAL;
    }
    const type = arg & ~flagBits;
    if (type !== K.SOCK_STREAM && type !== K.SOCK_DGRAM && type !== K.SOCK_SEQPACKET) return this.E.EPROTOTYPE;
    if (type === K.SOCK_SEQPACKET && !this.abi.hasSeqpacket) return this.E.EPROTONOSUPPORT;
    return { type, cloexec: (arg & K.SOCK_CLOEXEC) !== 0 && K.SOCK_CLOEXEC !== 0, nonblock: (arg & K.SOCK_NONBLOCK) !== 0 && K.SOCK_NONBLOCK !== 0 };
  }

  // ---- readiness and kqueue ----

  #readable(s: SocketDesc): { ready: boolean; data: number; eof: boolean } {
    if (s.listening) return { ready: s.backlog.length > 0, data: s.backlog.length, eof: false };
    const eof = s.peerGone || s.shutRd || (s.peer !== null && s.peer.shutWr);
    return { ready: s.queue.length > 0 || eof, data: s.queued, eof };
  }
  #writable(s: SocketDesc): { ready: boolean; data: number; eof: boolean } {
    if (s.peerGone || s.shutWr) return { ready: true, data: 0, eof: true };
    if (!s.peer) return { ready: false, data: 0, eof: false };
    const room = SOCKET_BUFFER - s.peer.queued;
    return { ready: room > 0, data: room, eof: false };
  }
  /** Fires every ready knote (one-shot ones are deleted), writing the events into the kqueue's pipe. */
  pump(): void {
    for (const kq of this.kqueues) {
      for (const [key, kn] of kq.knotes) {
        if (kn.filter === this.K.EVFILT_USER) continue;
        const e = this.fds.get(kn.ident);
        let st = { ready: true, data: 0, eof: false };
        if (e && e.desc.kind === "socket") st = kn.filter === this.K.EVFILT_READ ? this.#readable(e.desc) : this.#writable(e.desc);
        if (!st.ready) continue;
        this.#post(kq, [kn.ident, kn.filter, st.eof ? this.K.EV_EOF : 0, 0, st.data, kn.udata]);
        if (kn.oneshot) kq.knotes.delete(key);
        else this.violation(`knote ${key} is not EV_ONESHOT: the fake reports it once`);
      }
    }
  }
  #post(kq: KqueueDesc, rec: number[]): void {
    const b = new Float64Array(REC_WORDS);
    b.set(rec);
    const r = Number(host.write(kq.realW, ptr(b), REC_BYTES));
    if (r !== REC_BYTES) throw new Error(`fake kernel: kqueue pipe write returned ${r}`);
  }

  // ---- the libc functions ----

  readonly impl: Record<string, (...a: any[]) => number | bigint | null> = {
    __error: () => this.errnoPtr as unknown as number,
    getpid: () => this.identity.pid,
    getuid: () => this.identity.uid,
    geteuid: () => this.identity.uid,
    getgid: () => this.identity.gids[0] ?? 0,

    socket: (domain: number, typeArg: number, proto: number) => {
      if (domain !== this.K.AF_UNIX) return this.#fail(this.E.EAFNOSUPPORT);
      if (proto !== 0) return this.#fail(this.E.EPROTONOSUPPORT);
      const t = this.#sockType(typeArg);
      if (typeof t === "number") return this.#fail(t);
      return this.#install(this.#newSocket(t.type, t.nonblock), t.cloexec);
    },

    socketpair: (domain: number, typeArg: number, proto: number, sv: unknown) => {
      if (domain !== this.K.AF_UNIX) return this.#fail(this.E.EAFNOSUPPORT);
      if (proto !== 0) return this.#fail(this.E.EPROTONOSUPPORT);
      const t = this.#sockType(typeArg);
      if (typeof t === "number") return this.#fail(t);
      const a = this.#newSocket(t.type, t.nonblock);
      const b = this.#newSocket(t.type, t.nonblock);
      a.peer = b;
      b.peer = a;
      a.peerIdentity = b.identity;
      b.peerIdentity = a.identity;
      const out = view(mem(sv, 8, "socketpair sv", this));
      out.setInt32(0, this.#install(a, t.cloexec), true);
      out.setInt32(4, this.#install(b, t.cloexec), true);
      return 0;
    },

    close: (fd: number) => {
      const e = this.fds.get(fd);
      if (!e) {
        this.violation(this.#disposed.has(fd) ? `close(${fd}): the kernel already disposed of that fd (truncated message)` : `close(${fd}): not open (a double close or a number the library does not own)`);
        return this.#fail(this.E.EBADF);
      }
      this.#disposed.delete(fd);
      this.fds.delete(fd);
      // close() removes the fd's knotes from every kqueue (knote_fdclose)
      for (const kq of this.kqueues) for (const [key, kn] of kq.knotes) if (kn.ident === fd && kn.filter !== this.K.EVFILT_USER) kq.knotes.delete(key);
      this.#drop(e.desc);
      this.pump();
      return 0;
    },

    fcntl: (...args: number[]) => {
      let fd: number, cmd: number, arg: number;
      if (this.abi.name === "darwin-arm64") {
        if (args.length !== 9) this.violation(`darwin-arm64 fcntl called with ${args.length} arguments (the binding pads to 9)`);
        for (let i = 2; i < 8; i++) if (Number(args[i]) !== 0) this.violation(`darwin-arm64 fcntl register dummy ${i} is ${args[i]}`);
        [fd, cmd, arg] = [args[0]!, args[1]!, args[8]!];
      } else {
        if (args.length !== 3) this.violation(`fcntl called with ${args.length} arguments`);
        [fd, cmd, arg] = [args[0]!, args[1]!, args[2]!];
      }
      const e = this.#entry(fd);
      if (!e) return this.#fail(this.E.EBADF);
      const K = this.K;
      switch (cmd) {
        case K.F_GETFD:
          return e.cloexec ? K.FD_CLOEXEC : 0;
        case K.F_SETFD:
          e.cloexec = (arg & K.FD_CLOEXEC) !== 0;
          return 0;
        case K.F_GETFL:
          return K.O_RDWR | (e.desc.nonblock ? K.O_NONBLOCK : 0);
        case K.F_SETFL:
          e.desc.nonblock = (arg & K.O_NONBLOCK) !== 0;
          return 0;
        case K.F_DUPFD_CLOEXEC: {
          let n = Math.max(arg, FD_BASE);
          while (this.fds.has(n)) n++;
          return this.#install(e.desc, true, n);
        }
        default:
          this.violation(`fcntl cmd ${cmd} not modelled`);
          return this.#fail(this.E.EINVAL);
      }
    },

    ioctl: (fd: number, req: number | bigint, ...rest: unknown[]) => {
      if (rest.length > 0) this.violation(`ioctl called with a variadic argument (${rest.length})`);
      const e = this.#entry(fd);
      if (!e) return this.#fail(this.E.EBADF);
      if (Number(req) === this.K.FIOCLEX) {
        if (this.#fioclexFailures > 0 && this.#fioclexSkip > 0) this.#fioclexSkip--;
        else if (this.#fioclexFailures > 0) {
          this.#fioclexFailures--;
          return this.#fail(this.#fioclexErrno);
        }
        e.cloexec = true;
        return 0;
      }
      if (Number(req) === this.K.FIONBIO) this.violation("FIONBIO needs an int* argument the binding cannot pass");
      return this.#fail(this.E.ENOTTY);
    },

    getrlimit: (resource: number, out: unknown) => {
      if (resource !== this.K.RLIMIT_NOFILE) {
        this.violation(`getrlimit(${resource}): only RLIMIT_NOFILE is modelled`);
        return this.#fail(this.E.EINVAL);
      }
      const l = this.abi.rlimit;
      const v = view(mem(out, l.size, "rlimit", this));
      v.setBigUint64(l.cur.offset, this.rlimitNofile.cur, true);
      v.setBigUint64(l.max.offset, this.rlimitNofile.max, true);
      return 0;
    },

    setsockopt: (fd: number, level: number, name: number, val: unknown, len: number) => {
      const s = this.#socket(fd);
      if (typeof s === "number") return this.#fail(s);
      const K = this.K;
      if (level !== K.SOL_SOCKET) return this.#fail(this.E.ENOPROTOOPT);
      if (len !== 4) {
        this.violation(`setsockopt(${name}) with optlen ${len}`);
        return this.#fail(this.E.EINVAL);
      }
      const v = view(mem(val, 4, "setsockopt value", this)).getInt32(0, true);
      if (name === K.SO_NOSIGPIPE && K.SO_NOSIGPIPE >= 0) s.nosigpipe = v !== 0;
      else if (name !== K.SO_SNDBUF && name !== K.SO_RCVBUF && name !== K.SO_REUSEADDR) return this.#fail(this.E.ENOPROTOOPT);
      return 0;
    },

    getsockopt: (fd: number, level: number, name: number, val: unknown, lenp: unknown) => {
      const s = this.#socket(fd);
      if (typeof s === "number") return this.#fail(s);
      const K = this.K;
      const lenView = view(mem(lenp, 4, "getsockopt optlen", this));
      const given = lenView.getUint32(0, true);
      const int = (n: number): number => {
        if (given < 4) return this.#fail(this.E.EINVAL);
        view(mem(val, 4, "getsockopt value", this)).setInt32(0, n, true);
        lenView.setUint32(0, 4, true);
        return 0;
      };
      if (level === K.SOL_SOCKET) {
        if (name === K.SO_TYPE) return int(s.type);
        if (name === K.SO_ERROR) return int(0);
        if (name === K.SO_ACCEPTCONN) return int(s.listening ? 1 : 0);
        if (name === K.SO_DOMAIN && K.SO_DOMAIN >= 0) return int(K.AF_UNIX);
        if (name === K.SO_NOSIGPIPE && K.SO_NOSIGPIPE >= 0) return int(s.nosigpipe ? 1 : 0);
        if (name === K.SO_SNDBUF || name === K.SO_RCVBUF) return int(SOCKET_BUFFER);
        return this.#fail(this.E.ENOPROTOOPT);
      }
      if (level === K.SOL_LOCAL && name === K.LOCAL_PEERCRED) {
        const x = this.abi.xucred!;
        if (given !== x.size) this.violation(`LOCAL_PEERCRED optlen ${given}, struct xucred is ${x.size} bytes on ${this.abi.name}`);
        const who = s.peerIdentity;
        if (!who) return this.#fail(this.E.ENOTCONN);
        const n = Math.min(given, x.size);
        const full = new Uint8Array(x.size);
        const v = view(full);
        setField(v, 0, x.version, 0); // XUCRED_VERSION
        setField(v, 0, x.uid, who.uid);
        const groups = who.gids.slice(0, 16);
        v.setInt16(x.ngroups.offset, groups.length, true);
        groups.forEach((g, i) => v.setUint32(x.groups.offset + 4 * i, g, true));
        if (this.abi.os === "freebsd") v.setInt32(80, who.pid, true); // cr_pid, the low half of the union at 80
        mem(val, n, "xucred", this).set(full.subarray(0, n));
        lenView.setUint32(0, n, true);
        return 0;
      }
      if (level === K.SOL_LOCAL && name === K.LOCAL_PEERPID && K.LOCAL_PEERPID >= 0) {
        if (!s.peerIdentity) return this.#fail(this.E.ENOTCONN);
        return int(s.peerIdentity.pid);
      }
      return this.#fail(this.E.ENOPROTOOPT);
    },

    bind: (fd: number, addr: unknown, len: number) => {
      const s = this.#socket(fd);
      if (typeof s === "number") return this.#fail(s);
      const path = this.#readSockaddr(addr, len, "bind");
      if (typeof path === "number") return this.#fail(path);
      if (this.paths.has(path)) return this.#fail(this.E.EADDRINUSE);
      if (s.path !== null) return this.#fail(this.E.EINVAL);
      s.path = path;
      this.paths.set(path, s);
      return 0;
    },

    listen: (fd: number, _backlog: number) => {
      const s = this.#socket(fd);
      if (typeof s === "number") return this.#fail(s);
      if (s.type === this.K.SOCK_DGRAM) return this.#fail(this.E.EOPNOTSUPP);
      if (s.path === null) return this.#fail(this.E.EINVAL);
      s.listening = true;
      s.identity = { ...this.identity, gids: [...this.identity.gids] }; // credentials cached at listen()
      return 0;
    },

    connect: (fd: number, addr: unknown, len: number) => {
      const s = this.#socket(fd);
      if (typeof s === "number") return this.#fail(s);
      const path = this.#readSockaddr(addr, len, "connect");
      if (typeof path === "number") return this.#fail(path);
      const t = this.paths.get(path);
      if (!t || t.refs === 0) return this.#fail(this.E.ECONNREFUSED);
      if (s.peer) return this.#fail(this.E.EISCONN);
      if (t.type !== s.type) return this.#fail(this.E.EPROTOTYPE);
      if (s.type === this.K.SOCK_DGRAM) {
        s.peer = t; // one-way association; the target does not learn of it
        return 0;
      }
      if (!t.listening) return this.#fail(this.E.ECONNREFUSED);
      const server = this.#newSocket(s.type, false);
      server.identity = t.identity;
      server.path = t.path; // an accepted socket carries the listener's address (not registered again)
      server.refs++; // held by the backlog
      server.peer = s;
      s.peer = server;
      s.identity = { ...this.identity, gids: [...this.identity.gids] };
      server.peerIdentity = s.identity;
      s.peerIdentity = t.identity;
      t.backlog.push(server);
      this.pump();
      return 0;
    },

    accept: (fd: number, addr: unknown, lenp: unknown) => this.#accept(fd, addr, lenp, 0, "accept"),
    accept4: (fd: number, addr: unknown, lenp: unknown, flags: number) => this.#accept(fd, addr, lenp, flags, "accept4"),

    getsockname: (fd: number, addr: unknown, lenp: unknown) => {
      const s = this.#socket(fd);
      if (typeof s === "number") return this.#fail(s);
      return this.#writeSockaddr(addr, lenp, s.path);
    },
    getpeername: (fd: number, addr: unknown, lenp: unknown) => {
      const s = this.#socket(fd);
      if (typeof s === "number") return this.#fail(s);
      if (!s.peer) return this.#fail(this.E.ENOTCONN);
      return this.#writeSockaddr(addr, lenp, s.peer.path);
    },

    shutdown: (fd: number, how: number) => {
      const s = this.#socket(fd);
      if (typeof s === "number") return this.#fail(s);
      if (!s.peer && !s.peerGone) return this.#fail(this.E.ENOTCONN);
      const K = this.K;
      if (how === K.SHUT_RD || how === K.SHUT_RDWR) s.shutRd = true;
      if (how === K.SHUT_WR || how === K.SHUT_RDWR) s.shutWr = true;
      this.pump();
      return 0;
    },

    unlink: (pathArg: unknown) => {
      const p = this.#cString(pathArg);
      if (!this.paths.delete(p)) return this.#fail(this.E.ENOENT);
      return 0;
    },
    chmod: (pathArg: unknown, _mode: number) => (this.paths.has(this.#cString(pathArg)) ? 0 : this.#fail(this.E.ENOENT)),

    poll: (fdsArg: unknown, nfds: number, _timeout: number) => {
      const l = this.abi.pollfd;
      const b = mem(fdsArg, l.size * nfds, "pollfd", this);
      const v = view(b);
      let n = 0;
      for (let i = 0; i < nfds; i++) {
        const at = i * l.size;
        const fd = v.getInt32(at + l.fd.offset, true);
        const events = v.getInt16(at + l.events.offset, true);
        const e = this.fds.get(fd);
        let rev = 0;
        if (!e) rev = this.K.POLLNVAL;
        else if (e.desc.kind !== "socket") rev = events & (this.K.POLLIN | this.K.POLLOUT);
        else {
          if (events & this.K.POLLIN && this.#readable(e.desc).ready) rev |= this.K.POLLIN;
          if (events & this.K.POLLOUT && this.#writable(e.desc).ready) rev |= this.K.POLLOUT;
          if (e.desc.peerGone) rev |= this.K.POLLHUP;
        }
        v.setInt16(at + l.revents.offset, rev, true);
        if (rev) n++;
      }
      return n;
    },

    pipe: (_fds: unknown) => {
      this.violation("pipe() is not modelled");
      return this.#fail(this.E.ENOSYS);
    },
    read: () => {
      this.violation("read() is not modelled");
      return this.#fail(this.E.ENOSYS);
    },
    write: () => {
      this.violation("write() is not modelled");
      return this.#fail(this.E.ENOSYS);
    },
    getpeereid: () => {
      this.violation("getpeereid() is not modelled");
      return this.#fail(this.E.ENOSYS);
    },

    sendmsg: (fd: number, msg: unknown, flags: number) => this.#sendmsg(fd, msg, flags),
    recvmsg: (fd: number, msg: unknown, flags: number) => this.#recvmsg(fd, msg, flags),

    kqueue: () => {
      const fds = new Int32Array(2);
      if (host.pipe2(ptr(fds), HOST_O_CLOEXEC) !== 0) return this.#fail(this.E.EMFILE);
      const [r, w] = [fds[0]!, fds[1]!];
      if (r >= FD_BASE || w >= FD_BASE) throw new Error("fake kernel: real fd numbers reached the fake range");
      const kq: KqueueDesc = { id: this.#nextId++, refs: 0, nonblock: false, kind: "kqueue", realR: r, realW: w, knotes: new Map() };
      this.kqueues.add(kq);
      // kqueue() fds are not inherited by children; the library also sets FIOCLEX
      return this.#install(kq, false, r);
    },

    kevent: (kq: number, changes: unknown, nchanges: number, events: unknown, nevents: number, timeout: unknown) => {
      if (!isNull(timeout)) this.violation("kevent with a timeout: the reactor only blocks without one");
      if (nchanges > 0 && nevents > 0) this.violation("kevent with both a changelist and an eventlist");
      if (nchanges === 0 && nevents > 0) return this.#keventWait(kq, events, nevents);
      const e = this.fds.get(kq);
      if (!e || e.desc.kind !== "kqueue") return this.#fail(this.E.EBADF);
      const l = this.abi.kevent!;
      const b = mem(changes, l.size * nchanges, "kevent changelist", this);
      const v = view(b);
      for (let i = 0; i < nchanges; i++) {
        const at = i * l.size;
        this.#checkPads(v, at, l.size, [l.ident, l.filter, l.flags, l.fflags, l.data, l.udata], `kevent[${i}]`);
        const ident = getField(v, at, l.ident);
        const filter = v.getInt16(at + l.filter.offset, true);
        const flags = getField(v, at, l.flags);
        const fflags = getField(v, at, l.fflags);
        const udata = getField(v, at, l.udata);
        const r = this.#change(e.desc, ident, filter, flags, fflags, udata);
        if (r !== 0) return this.#fail(r);
      }
      this.pump();
      return 0;
    },
  };

  #change(kq: KqueueDesc, ident: number, filter: number, flags: number, fflags: number, udata: number): number {
    const K = this.K;
    const key = `${ident}/${filter}`;
    if (filter === K.EVFILT_USER) {
      if (flags & K.EV_ADD) {
        kq.knotes.set(key, { ident, filter, flags, udata, oneshot: false });
      }
      if (fflags & K.NOTE_TRIGGER) {
        const kn = kq.knotes.get(key);
        if (!kn) return this.E.ENOENT;
        this.#post(kq, [ident, filter, kn.flags & K.EV_CLEAR, fflags, 0, kn.udata]);
      }
      return 0;
    }
    if (filter !== K.EVFILT_READ && filter !== K.EVFILT_WRITE) {
      this.violation(`kevent filter ${filter} not modelled`);
      return this.E.EINVAL;
    }
    if (flags & K.EV_DELETE) {
      if (!this.fds.has(ident)) return this.E.EBADF;
      return kq.knotes.delete(key) ? 0 : this.E.ENOENT;
    }
    if (flags & K.EV_ADD) {
      if (!this.fds.has(ident)) return this.E.EBADF;
      kq.knotes.set(key, { ident, filter, flags, udata, oneshot: (flags & K.EV_ONESHOT) !== 0 });
      return 0;
    }
    this.violation(`kevent flags 0x${flags.toString(16)} not modelled`);
    return this.E.EINVAL;
  }

  /** The Worker side: block on the kqueue's pipe (the kqueue fd is its read end) and decode the events. */
  #keventWait(kq: number, events: unknown, nevents: number): number {
    const buf = new Float64Array(nevents * REC_WORDS);
    const n = Number(host.read(kq, ptr(buf), buf.byteLength));
    if (n < 0) return this.#fail(host.errno() === HOST_EINTR ? this.E.EINTR : this.E.EBADF);
    if (n % REC_BYTES !== 0) throw new Error(`fake kernel: partial kevent record (${n} bytes)`);
    const l = this.abi.kevent!;
    const out = mem(events, l.size * nevents, "kevent eventlist", this);
    const v = view(out);
    const count = n / REC_BYTES;
    for (let i = 0; i < count; i++) {
      const at = i * l.size;
      out.fill(0, at, at + l.size); // whole struct, FreeBSD's ext[4] included
      const [ident, filter, flags, fflags, data, udata] = buf.subarray(i * REC_WORDS, (i + 1) * REC_WORDS);
      setField(v, at, l.ident, ident!);
      v.setInt16(at + l.filter.offset, filter!, true);
      setField(v, at, l.flags, flags!);
      setField(v, at, l.fflags, fflags!);
      v.setBigInt64(at + l.data.offset, BigInt(data!), true);
      setField(v, at, l.udata, udata!);
    }
    return count;
  }

  #accept(fd: number, addr: unknown, lenp: unknown, flags: number, fn: string): number {
    const s = this.#socket(fd);
    if (typeof s === "number") return this.#fail(s);
    if (!isNull(addr) || !isNull(lenp)) this.violation(`${fn} with an address buffer (the library passes none)`);
    if (!s.listening) return this.#fail(this.E.EINVAL);
    const K = this.K;
    if (flags & ~(K.SOCK_CLOEXEC | K.SOCK_NONBLOCK)) return this.#fail(this.E.EINVAL);
    const next = s.backlog.shift();
    if (!next) {
      if (s.nonblock) return this.#fail(this.E.EAGAIN);
      this.violation(`${fn} would block forever (single-threaded fake)`);
      return this.#fail(this.E.EAGAIN);
    }
    next.refs--; // the backlog's reference moves to the fd table
    next.nonblock = (flags & K.SOCK_NONBLOCK) !== 0;
    return this.#install(next, (flags & K.SOCK_CLOEXEC) !== 0);
  }

  #cString(p: unknown): string {
    if (ArrayBuffer.isView(p)) {
      const b = new Uint8Array(p.buffer, p.byteOffset, p.byteLength);
      const nul = b.indexOf(0);
      if (nul < 0) this.violation("path without a terminating NUL");
      return new TextDecoder().decode(b.subarray(0, nul < 0 ? b.length : nul));
    }
    const b = mem(p, 1024, "path", this);
    return new TextDecoder().decode(b.subarray(0, b.indexOf(0)));
  }

  /** Checks a sockaddr_un the library built against the table; returns the path or an errno. */
  #readSockaddr(addr: unknown, len: number, what: string): string | number {
    const s = this.abi.sockaddrUn;
    if (len < s.pathOffset + 1 || len > s.size) return this.E.EINVAL;
    const b = mem(addr, len, `${what} sockaddr_un`, this);
    if (s.len && b[s.len.offset] !== len) this.violation(`${what}: sun_len ${b[s.len.offset]} != addrlen ${len}`);
    if (b[s.family.offset] !== this.K.AF_UNIX) return this.E.EAFNOSUPPORT;
    const raw = b.subarray(s.pathOffset, len);
    const nul = raw.indexOf(0);
    if (nul !== raw.length - 1) this.violation(`${what}: sun_path is not NUL-terminated exactly at addrlen (nul at ${nul}, ${raw.length} bytes)`);
    if (raw.length > s.pathSize) return this.E.ENAMETOOLONG;
    return new TextDecoder().decode(raw.subarray(0, nul < 0 ? raw.length : nul));
  }

  #writeSockaddr(addr: unknown, lenp: unknown, path: string | null): number {
    const s = this.abi.sockaddrUn;
    const lenView = view(mem(lenp, 4, "socklen", this));
    const given = lenView.getUint32(0, true);
    const full = new Uint8Array(s.size);
    let len: number;
    if (path === null) {
      len = 16; // sizeof(struct sockaddr): the BSD "no name" address
    } else {
      const p = new TextEncoder().encode(path);
      full.set(p, s.pathOffset);
      len = s.pathOffset + p.length + 1;
    }
    if (s.len) full[s.len.offset] = len;
    full[s.family.offset] = this.K.AF_UNIX;
    const n = Math.min(given, len);
    mem(addr, n, "sockaddr out", this).set(full.subarray(0, n));
    lenView.setUint32(0, len, true);
    return 0;
  }

  /** msghdr -> its fields, checked against the table. */
  #msghdr(msg: unknown, what: string) {
    const m = this.abi.msghdr;
    const b = mem(msg, m.size, `${what} msghdr`, this);
    const v = view(b);
    this.#checkPads(v, 0, m.size, [m.name, m.namelen, m.iov, m.iovlen, m.control, m.controllen, m.flags], `${what} msghdr`);
    const h = {
      name: getField(v, 0, m.name), namelen: getField(v, 0, m.namelen), iov: getField(v, 0, m.iov), iovlen: getField(v, 0, m.iovlen),
      control: getField(v, 0, m.control), controllen: getField(v, 0, m.controllen), flags: getField(v, 0, m.flags),
    };
    const iovs: Uint8Array[] = [];
    if (h.iovlen > 1024) return { ...h, v, iovs, error: this.E.EMSGSIZE };
    if (h.iovlen > 0) {
      const io = this.abi.iovec;
      const iv = view(mem(h.iov, io.size * h.iovlen, `${what} iovec`, this));
      for (let i = 0; i < h.iovlen; i++) {
        this.#checkPads(iv, i * io.size, io.size, [io.base, io.len], `${what} iovec[${i}]`);
        const base = getField(iv, i * io.size, io.base);
        const len = getField(iv, i * io.size, io.len);
        iovs.push(len === 0 ? new Uint8Array(0) : mem(base, len, `${what} iov[${i}]`, this));
      }
    }
    return { ...h, v, iovs, error: 0 };
  }

  /** Parses the control data of a send per the OS's rules; returns the rights or an errno. */
  #sendControl(control: number, controllen: number): Desc[][] | number {
    if (controllen === 0) return [];
    const c = this.abi.cmsg;
    const K = this.K;
    if (controllen > 2048) return this.E.EINVAL; // MCLBYTES
    const b = mem(control, controllen, "send control", this);
    const v = view(b);
    const rights: Desc[][] = [];
    let at = 0;
    let count = 0;
    while (at + c.headerSize <= controllen) {
      const len = getField(v, at, c.len);
      const level = v.getInt32(at + c.level.offset, true);
      const type = v.getInt32(at + c.type.offset, true);
      if (c.headerLen > c.headerSize) this.#checkPads(v, at, c.headerLen, [c.len, c.level, c.type], "cmsghdr");
      if (len < c.headerLen || at + len > controllen) return this.E.EINVAL;
      if (level !== K.SOL_SOCKET || type !== K.SCM_RIGHTS) {
        this.violation(`cmsg level ${level} type ${type}: only SCM_RIGHTS is modelled`);
        return this.E.EINVAL;
      }
      const payload = len - c.headerLen;
      if (payload % 4 !== 0) return this.E.EINVAL;
      if (this.abi.os === "darwin") {
        // xnu unp_internalize: exactly one SCM_RIGHTS message whose cmsg_len is the whole control
        // length, and 12 + 8n bytes (fileglob pointers) must fit the 2048-byte cluster
        if (count > 0 || len !== controllen) return this.E.EINVAL;
        if (c.headerSize + 8 * (payload / 4) > 2048) return this.E.EINVAL;
      }
      const one: Desc[] = [];
      for (let i = 0; i < payload / 4; i++) {
        const fd = v.getInt32(at + c.headerLen + 4 * i, true);
        const e = this.fds.get(fd);
        if (!e || e.desc.kind === "kqueue") return this.E.EBADF; // kqueues are not passable
        one.push(e.desc);
      }
      rights.push(one);
      const space = Math.ceil(len / c.align) * c.align;
      for (let i = at + len; i < Math.min(at + space, controllen); i++) {
        if (v.getUint8(i) !== 0) this.violation(`control padding byte ${i} is ${v.getUint8(i)}`);
      }
      at += space;
      count++;
    }
    if (at < controllen && this.abi.os === "freebsd") {
      for (let i = at; i < controllen; i++) if (v.getUint8(i) !== 0) this.violation(`control trailing byte ${i} is nonzero`);
    }
    return rights;
  }

  #eintrNow(fn: string): boolean {
    const n = this.#eintr.get(fn) ?? 0;
    if (n === 0) return false;
    this.#eintr.set(fn, n - 1);
    return true;
  }

  #sendmsg(fd: number, msg: unknown, flags: number): number {
    const K = this.K;
    const s = this.#socket(fd);
    if (typeof s === "number") return this.#fail(s);
    const known = K.MSG_DONTWAIT | K.MSG_NOSIGNAL;
    if (this.abi.sigpipe !== "msg_nosignal" && flags & K.MSG_NOSIGNAL) this.violation(`sendmsg flag MSG_NOSIGNAL on ${this.abi.name}, whose strategy is ${this.abi.sigpipe}`);
    if (flags & ~known) this.violation(`sendmsg flags 0x${flags.toString(16)} include unexpected bits`);
    const h = this.#msghdr(msg, "sendmsg");
    if (h.error) return this.#fail(h.error);
    if (h.name !== 0 || h.namelen !== 0) this.violation("sendmsg with msg_name (the library sends on connected sockets)");
    const rights = this.#sendControl(h.control, h.controllen);
    if (typeof rights === "number") return this.#fail(rights);
    const total = h.iovs.reduce((n, b) => n + b.length, 0);
    const peer = s.peer;
    if (s.shutWr || s.peerGone || (peer !== null && peer.shutRd)) {
      const protectedBy = this.abi.sigpipe === "msg_nosignal" ? (flags & K.MSG_NOSIGNAL) !== 0 : s.nosigpipe;
      if (!protectedBy) this.violation(`sendmsg to a closed peer without ${this.abi.sigpipe === "msg_nosignal" ? "MSG_NOSIGNAL" : "SO_NOSIGPIPE"}: SIGPIPE would kill the process`);
      return this.#fail(this.E.EPIPE);
    }
    if (!peer) return this.#fail(s.type === K.SOCK_DGRAM ? this.E.EDESTADDRREQ : this.E.ENOTCONN);
    if (this.#eintrNow("sendmsg")) return this.#fail(this.E.EINTR);
    const room = SOCKET_BUFFER - peer.queued;
    const stream = s.type === K.SOCK_STREAM;
    if (room <= 0 || (!stream && total > room)) {
      if (s.nonblock || flags & K.MSG_DONTWAIT) return this.#fail(this.E.EAGAIN);
      this.violation("sendmsg would block forever (single-threaded fake)");
      return this.#fail(this.E.EAGAIN);
    }
    if (!stream && total > SOCKET_BUFFER) return this.#fail(this.E.EMSGSIZE);
    const n = stream ? Math.min(total, room) : total;
    const data = new Uint8Array(n);
    let o = 0;
    for (const b of h.iovs) {
      if (o >= n) break;
      const take = Math.min(b.length, n - o);
      data.set(b.subarray(0, take), o);
      o += take;
    }
    for (const d of rights.flat()) d.refs++;
    peer.queue.push({ data, off: 0, rights: rights.length > 0 ? rights : null });
    peer.queued += n;
    this.pump();
    return n;
  }

  #recvmsg(fd: number, msg: unknown, flags: number): number {
    const K = this.K;
    const s = this.#socket(fd);
    if (typeof s === "number") return this.#fail(s);
    const cloexecFlag = K.MSG_CMSG_CLOEXEC !== 0 && (flags & K.MSG_CMSG_CLOEXEC) !== 0;
    if (this.abi.cloexec === "msg_cmsg_cloexec" && !cloexecFlag) this.violation("recvmsg without MSG_CMSG_CLOEXEC on an ABI whose strategy is msg_cmsg_cloexec");
    if (flags & ~(K.MSG_DONTWAIT | K.MSG_CMSG_CLOEXEC | K.MSG_PEEK)) this.violation(`recvmsg flags 0x${flags.toString(16)} include unexpected bits`);
    const h = this.#msghdr(msg, "recvmsg");
    if (h.error) return this.#fail(h.error);
    this.lastRecvControllen = h.controllen;
    const m = this.abi.msghdr;
    if (this.#eintrNow("recvmsg")) return this.#fail(this.E.EINTR);
    const rec = s.queue[0];
    if (!rec) {
      if (s.peerGone || s.shutRd || (s.peer !== null && s.peer.shutWr)) {
        setField(h.v, 0, m.controllen, 0);
        setField(h.v, 0, m.flags, 0);
        return 0;
      }
      if (s.nonblock || flags & K.MSG_DONTWAIT) return this.#fail(this.E.EAGAIN);
      this.violation("recvmsg would block forever (single-threaded fake)");
      return this.#fail(this.E.EAGAIN);
    }
    if (flags & K.MSG_PEEK) this.violation("MSG_PEEK is not modelled");
    let outFlags = 0;
    // payload
    const cap = h.iovs.reduce((n, b) => n + b.length, 0);
    const stream = s.type === K.SOCK_STREAM;
    let got = 0;
    const copy = (r: Rec): void => {
      const take = Math.min(r.data.length - r.off, cap - got);
      let src = r.off;
      let left = take;
      let pos = got;
      for (const b of h.iovs) {
        if (left === 0) break;
        if (pos >= b.length) {
          pos -= b.length;
          continue;
        }
        const k = Math.min(b.length - pos, left);
        b.set(r.data.subarray(src, src + k), pos);
        src += k;
        left -= k;
        pos = 0;
      }
      r.off += take;
      got += take;
    };
    const rights = rec.rights;
    rec.rights = null;
    copy(rec);
    if (stream) {
      // a stream read continues into following records that carry no control data
      while (rec.off === rec.data.length && s.queue.length > 1 && s.queue[1]!.rights === null && got < cap && rights === null) {
        s.queue.shift();
        s.queued -= rec.data.length;
        const next = s.queue[0]!;
        copy(next);
        if (next.off < next.data.length) break;
        Object.assign(rec, next); // (loop bookkeeping: `rec` now stands for the consumed next record)
      }
      if (s.queue[0]!.off === s.queue[0]!.data.length) {
        s.queued -= s.queue[0]!.data.length;
        s.queue.shift();
      }
    } else {
      if (rec.data.length > cap) outFlags |= K.MSG_TRUNC;
      s.queue.shift();
      s.queued -= rec.data.length;
    }
    // control
    let written = 0;
    if (rights !== null) {
      // FreeBSD (tests/sys/kern/unix_passfd_test.c, truncated_rights): every message's rights are
      // externalized (installed) and copied out as far as msg_controllen allows; a message that did
      // not fit whole is then disposed of, all of its fds closed again (even those whose numbers were
      // copied), and so is every message after it.
      const c = this.abi.cmsg;
      const parts: Uint8Array[] = [];
      const installed: number[][] = [];
      for (const one of rights) {
        const cmsgLen = c.headerLen + 4 * one.length;
        const full = new Uint8Array(Math.ceil(cmsgLen / c.align) * c.align);
        const fv = view(full);
        setField(fv, 0, c.len, cmsgLen);
        fv.setInt32(c.level.offset, K.SOL_SOCKET, true);
        fv.setInt32(c.type.offset, K.SCM_RIGHTS, true);
        const nums: number[] = [];
        for (let i = 0; i < one.length; i++) {
          const num = this.#install(one[i]!, cloexecFlag);
          one[i]!.refs--; // the in-flight reference became the fd table's
          nums.push(num);
          fv.setInt32(c.headerLen + 4 * i, num, true);
        }
        parts.push(full);
        installed.push(nums);
      }
      const total = parts.reduce((n, p) => n + p.length, 0);
      const all = new Uint8Array(total);
      let o = 0;
      for (const p of parts) {
        all.set(p, o);
        o += p.length;
      }
      written = Math.min(h.controllen, total);
      if (written > 0) mem(h.control, written, "recv control", this).set(all.subarray(0, written));
      let end = 0;
      for (let i = 0; i < parts.length; i++) {
        end += parts[i]!.length;
        if (end > h.controllen) {
          outFlags |= K.MSG_CTRUNC;
          for (const num of installed[i]!) this.#kernelClose(num);
        }
      }
    }
    if (h.name !== 0) setField(h.v, 0, m.namelen, 0);
    setField(h.v, 0, m.controllen, written);
    setField(h.v, 0, m.flags, outFlags);
    this.pump();
    return got;
  }
}

/** The fake `dlopen`: the OS's exports only, each call counted and EINTR-injectable. */
export function fakeDlopen(k: Kernel, libName: string, symbols: Record<string, FFIFunction>): { symbols: Record<string, (...a: never[]) => unknown>; close(): void } {
  if (libName !== k.abi.libName) throw new Error(`fake dlopen: ${libName} is not ${k.abi.name}'s libc (${k.abi.libName})`);
  const exported = EXPORTS[k.abi.os as "darwin" | "freebsd"];
  const out: Record<string, (...a: never[]) => unknown> = {};
  for (const [name, def] of Object.entries(symbols)) {
    if (!exported.has(name)) throw new Error(`fake dlopen: symbol "${name}" not found in ${libName}`);
    const f = k.impl[name];
    if (!f) throw new Error(`fake kernel: ${name} is exported but not modelled`);
    const arity = (def.args ?? []).length;
    out[name] = ((...args: unknown[]) => {
      k.calls.set(name, (k.calls.get(name) ?? 0) + 1);
      if (args.length !== arity && name !== "fcntl") k.violation(`${name} called with ${args.length} arguments, bound with ${arity}`);
      try {
        return f(...args);
      } catch (e) {
        if (e instanceof FakeFault) {
          k.violation(e.message);
          return k.failWith("EFAULT"); // what a kernel answers for a bad pointer
        }
        throw e;
      }
    }) as (...a: never[]) => unknown;
  }
  return { symbols: out, close() {} };
}
