/**
 * Thin syscall wrappers over the bound libc: EINTR retried (JavaScriptCore signals threads during GC
 * and JIT tier-up), errno read immediately after the failing call, failures thrown as SystemError.
 *
 * Ownership: functions that create fds (socket, socketpair, accept, dup, pipe) return bare numbers to
 * their caller inside the library, which wraps them in OwnedFd on the very next line; nothing fallible
 * runs in between. Nothing here closes an fd except closeFd.
 */
import { ptr } from "bun:ffi";
import { abi, K } from "./platform/index.ts";
import { nodeFs } from "./node-fs.ts";
import { errno, libc } from "./platform/libc.ts";
import { invalidArgType, invalidArgValue, SystemError } from "./errors.ts";

const EINTR = abi.errno.EINTR;

// Scratch buffers for small out-parameters. Module-level, so they stay reachable while libc writes them.
// Over an explicit ArrayBuffer: a small typed array without one can have its storage moved by JSC once
// the JIT tiers up, leaving int2Ptr/lenPtr pointing at freed memory (measured: sys.socketpair returned
// stale numbers after ~1000 calls; reactor engineer).
const int2 = new Int32Array(new ArrayBuffer(8));
const int2Ptr = ptr(int2);
const lenBuf = new Uint32Array(new ArrayBuffer(4));
const lenPtr = ptr(lenBuf);
// Touch `.buffer` (DataView) BEFORE ptr(): materialising the ArrayBuffer of a small JSC typed array
// moves its storage, which would leave an earlier ptr() pointing at the old memory.
const addrBuf = new Uint8Array(256);
const addrView = new DataView(addrBuf.buffer);
const addrPtr = ptr(addrBuf);
const rlimitBuf = new Uint8Array(abi.rlimit.size);
const rlimitView = new DataView(rlimitBuf.buffer);
const rlimitPtr = ptr(rlimitBuf);

export function fail(syscall: string, path?: string): never {
  throw new SystemError(syscall, errno(), path);
}

/**
 * The library's EINTR loop: calls `f` (a libc call returning -1 on failure) until it does not fail with
 * EINTR. Returns its non-negative result, or -errno (errno read right after the failing call). The
 * engine's sendmsg/recvmsg keep their own out-of-line copy (msg-io.ts): it also maps EAGAIN.
 */
export function retryEintr(f: () => number): number {
  for (;;) {
    const r = f();
    if (r >= 0) return r;
    const e = errno();
    if (e !== EINTR) return -e;
  }
}

/** retryEintr, throwing a SystemError for a failure. */
export function retry(syscall: string, f: () => number, path?: string): number {
  const r = retryEintr(f);
  if (r < 0) throw new SystemError(syscall, -r, path);
  return r;
}

let closeHook: ((fd: number) => void) | null = null;

/**
 * Registers the function every library close (and OwnedFd.release) runs first (the reactor uses it to drop the fd's epoll
 * registration and reject its waiters, so a reused fd number never inherits a stale registration).
 */
export function setCloseHook(hook: ((fd: number) => void) | null): void {
  closeHook = hook;
}

/** Runs the close hook for `fd` without closing it (an fd about to leave the library's hands). */
export function runCloseHook(fd: number): void {
  if (closeHook !== null) closeHook(fd);
}

/** close(2). Never retried: on Linux the fd is released even when close reports EINTR. Errors are ignored. */
export function closeFd(fd: number): void {
  if (closeHook !== null) closeAfterHook(fd);
  else libcClose(fd);
}

/** The close hook, then close(2) even if the hook threw (whose error then propagates). */
function closeAfterHook(fd: number): void {
  try {
    closeHook!(fd);
  } finally {
    libcClose(fd);
  }
}
const libcClose = libc.close;

export function fcntl(fd: number, cmd: number, arg = 0): number {
  return retry("fcntl", () => libc.fcntl(fd, cmd, arg));
}

export function isOpen(fd: number): boolean {
  return libc.fcntl(fd, K.F_GETFD, 0) >= 0;
}

export function getCloexec(fd: number): boolean {
  return (fcntl(fd, K.F_GETFD) & K.FD_CLOEXEC) !== 0;
}

/** Sets FD_CLOEXEC with ioctl(FIOCLEX): no variadic argument, so it is safe on every ABI. */
export function setCloexec(fd: number): void {
  retry("ioctl", () => libc.ioctl(fd, K.FIOCLEX));
}

export function setNonblocking(fd: number, on: boolean): void {
  const flags = fcntl(fd, K.F_GETFL);
  const next = on ? flags | K.O_NONBLOCK : flags & ~K.O_NONBLOCK;
  if (next !== flags) fcntl(fd, K.F_SETFL, next);
}

/** A new fd for the same open file description, with FD_CLOEXEC. */
export function dupCloexec(fd: number): number {
  return fcntl(fd, K.F_DUPFD_CLOEXEC, 0);
}

/** socket(2) with CLOEXEC (and NONBLOCK if asked); on ABIs without type flags, set both after the call. */
export function socket(domain: number, type: number, nonblocking = false): number {
  if (abi.hasSockFlags) {
    return retry("socket", () => libc.socket(domain, type | K.SOCK_CLOEXEC | (nonblocking ? K.SOCK_NONBLOCK : 0), 0));
  }
  const fd = retry("socket", () => libc.socket(domain, type, 0));
  try {
    setCloexec(fd);
    if (nonblocking) setNonblocking(fd, true);
  } catch (e) {
    closeFd(fd);
    throw e;
  }
  return fd;
}

/** socketpair(2) with CLOEXEC. Returns two fresh fds the caller must wrap at once. */
export function socketpair(type: number, nonblocking = false): [number, number] {
  const flags = abi.hasSockFlags ? K.SOCK_CLOEXEC | (nonblocking ? K.SOCK_NONBLOCK : 0) : 0;
  retry("socketpair", () => libc.socketpair(K.AF_UNIX, type | flags, 0, int2Ptr));
  const pair: [number, number] = [int2[0]!, int2[1]!];
  if (!abi.hasSockFlags) {
    try {
      for (const fd of pair) {
        setCloexec(fd);
        if (nonblocking) setNonblocking(fd, true);
      }
    } catch (e) {
      closeFd(pair[0]);
      closeFd(pair[1]);
      throw e;
    }
  }
  return pair;
}

/** pipe with CLOEXEC: [readEnd, writeEnd]. */
export function pipe(): [number, number] {
  if (abi.os === "linux") {
    retry("pipe2", () => libc.pipe2(int2Ptr, K.O_CLOEXEC));
    return [int2[0]!, int2[1]!];
  }
  retry("pipe", () => libc.pipe!(int2Ptr));
  const p: [number, number] = [int2[0]!, int2[1]!];
  try {
    setCloexec(p[0]);
    setCloexec(p[1]);
  } catch (e) {
    closeFd(p[0]);
    closeFd(p[1]);
    throw e;
  }
  return p;
}

// ---- addresses -------------------------------------------------------------------------------

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Encodes a sockaddr_un into the scratch buffer and returns its length. A path starting with "\0" is a
 * Linux abstract-namespace address: its length covers exactly the name bytes, no terminating NUL.
 */
export function encodeUnixAddress(path: string): number {
  if (typeof path !== "string") throw invalidArgType("path", "a string", typeof path);
  const s = abi.sockaddrUn;
  const bytes = encoder.encode(path);
  const abstract = bytes.length > 0 && bytes[0] === 0;
  if (abstract && !s.abstractNamespace) {
    throw invalidArgValue("path", `is an abstract-namespace address (leading "\\0"), which exists only on Linux`);
  }
  if (bytes.length === 0) throw invalidArgValue("path", "must not be empty");
  // Regular paths need a terminating NUL inside sun_path; abstract names use every byte.
  const max = abstract ? s.pathSize : s.pathSize - 1;
  if (bytes.length > max) {
    const e = new RangeError(`Unix socket path is ${bytes.length} bytes; the limit on ${abi.os} is ${max}: use a shorter path (e.g. a directory under /tmp)`);
    (e as RangeError & { code: string }).code = "ENAMETOOLONG";
    throw e;
  }
  if (!abstract && bytes.includes(0)) throw invalidArgValue("path", "must not contain NUL bytes");
  addrBuf.fill(0, 0, s.size);
  const len = s.pathOffset + bytes.length + (abstract ? 0 : 1);
  if (s.len) addrView.setUint8(s.len.offset, Math.min(len, 255));
  if (s.family.size === 1) addrView.setUint8(s.family.offset, K.AF_UNIX);
  else addrView.setUint16(s.family.offset, K.AF_UNIX, true);
  addrBuf.set(bytes, s.pathOffset);
  return len;
}

export function bind(fd: number, path: string): void {
  const len = encodeUnixAddress(path);
  retry("bind", () => libc.bind(fd, addrPtr, len), path);
}

export function connect(fd: number, path: string): void {
  const len = encodeUnixAddress(path);
  // AF_UNIX: an interrupted connect left the socket unconnected, so calling again is a fresh attempt.
  retry("connect", () => libc.connect(fd, addrPtr, len), path);
}

export function listen(fd: number, backlog: number): void {
  retry("listen", () => libc.listen(fd, backlog));
}

/** accept with CLOEXEC (and NONBLOCK for the new socket if asked). EAGAIN surfaces as SystemError. */
export function accept(fd: number, nonblocking = false): number {
  if (abi.hasAccept4) {
    return retry("accept4", () => libc.accept4(fd, null, null, K.SOCK_CLOEXEC | (nonblocking ? K.SOCK_NONBLOCK : 0)));
  }
  const c = retry("accept", () => libc.accept!(fd, null, null));
  try {
    setCloexec(c);
    if (nonblocking) setNonblocking(c, true);
  } catch (e) {
    closeFd(c);
    throw e;
  }
  return c;
}

export function getsockoptInt(fd: number, level: number, name: number, syscall = "getsockopt"): number {
  int2[0] = 0;
  lenBuf[0] = 4;
  retry(syscall, () => libc.getsockopt(fd, level, name, int2Ptr, lenPtr));
  return int2[0]!;
}

export function setsockoptInt(fd: number, level: number, name: number, value: number): void {
  int2[0] = value;
  retry("setsockopt", () => libc.setsockopt(fd, level, name, int2Ptr, 4));
}

/** getsockopt into a caller buffer; returns the length the kernel wrote. */
export function getsockoptBytes(fd: number, level: number, name: number, out: Uint8Array): number {
  lenBuf[0] = out.byteLength;
  retry("getsockopt", () => libc.getsockopt(fd, level, name, out, lenPtr)); // the view itself: kept alive as an argument
  return lenBuf[0]!;
}

/** A socket's local or peer address: a Unix path, an abstract name, unnamed, or an IP address and port. */
export type SocketAddress =
  | { family: "unix"; path: string; abstract: boolean }
  | { family: "ipv4"; address: string; port: number }
  | { family: "ipv6"; address: string; port: number }
  | { family: "unknown"; domain: number };

function decodeAddress(len: number): SocketAddress {
  const family = abi.sockaddrUn.family.size === 1 ? addrView.getUint8(abi.sockaddrUn.family.offset) : addrView.getUint16(abi.sockaddrUn.family.offset, true);
  if (family === K.AF_UNIX) {
    const raw = addrBuf.subarray(abi.sockaddrUn.pathOffset, Math.max(abi.sockaddrUn.pathOffset, len));
    // A leading NUL is an abstract name only where the namespace exists (Linux). The BSDs report an
    // unbound socket as their 16-byte "no name" sockaddr: zeros after the family, i.e. an empty path.
    if (abi.sockaddrUn.abstractNamespace && raw.length > 0 && raw[0] === 0) return { family: "unix", path: "\0" + decoder.decode(raw.subarray(1)), abstract: true };
    const nul = raw.indexOf(0);
    return { family: "unix", path: decoder.decode(nul >= 0 ? raw.subarray(0, nul) : raw), abstract: false };
  }
  if (family === K.AF_INET) {
    const a = abi.sockaddrIn;
    const port = addrView.getUint16(a.port, false);
    const address = Array.from(addrBuf.subarray(a.addr, a.addr + 4)).join(".");
    return { family: "ipv4", address, port };
  }
  if (family === K.AF_INET6) {
    const a = abi.sockaddrIn6;
    const port = addrView.getUint16(a.port, false);
    const parts: string[] = [];
    for (let i = 0; i < 8; i++) parts.push(addrView.getUint16(a.addr + i * 2, false).toString(16));
    return { family: "ipv6", address: compressIpv6(parts), port };
  }
  return { family: "unknown", domain: family };
}

function compressIpv6(parts: string[]): string {
  // Longest run of zero groups becomes "::" (RFC 5952).
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (parts[i] !== "0") { i++; continue; }
    let j = i;
    while (j < 8 && parts[j] === "0") j++;
    if (j - i > bestLen && j - i > 1) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  if (bestStart < 0) return parts.join(":");
  return parts.slice(0, bestStart).join(":") + "::" + parts.slice(bestStart + bestLen).join(":");
}

export function getsockname(fd: number): SocketAddress {
  addrBuf.fill(0);
  lenBuf[0] = addrBuf.byteLength;
  retry("getsockname", () => libc.getsockname(fd, addrPtr, lenPtr));
  return decodeAddress(lenBuf[0]!);
}

export function getpeername(fd: number): SocketAddress {
  addrBuf.fill(0);
  lenBuf[0] = addrBuf.byteLength;
  retry("getpeername", () => libc.getpeername(fd, addrPtr, lenPtr));
  return decodeAddress(lenBuf[0]!);
}

/**
 * The socket's address family (AF_UNIX, AF_INET, ...): SO_DOMAIN where the platform has it, else the
 * family getsockname reports (an unbound AF_UNIX socket still reports AF_UNIX).
 */
export function socketDomain(fd: number): number {
  if (K.SO_DOMAIN >= 0) return getsockoptInt(fd, K.SOL_SOCKET, K.SO_DOMAIN);
  const a = getsockname(fd);
  return a.family === "unix" ? K.AF_UNIX : a.family === "ipv4" ? K.AF_INET : a.family === "ipv6" ? K.AF_INET6 : a.domain;
}

export function shutdown(fd: number, how: number): void {
  retry("shutdown", () => libc.shutdown(fd, how));
}

/**
 * "dev:ino" of the file at `path` (not following a symlink), or null if there is none: the one identity
 * check before removing a socket file (a file someone bound or renamed over the path since is not ours).
 */
export function fileIdentity(path: string): string | null {
  try {
    const st = nodeFs().lstatSync(path, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

export function unlinkPath(path: string): boolean {
  const r = libc.unlink(encoder.encode(path + "\0"));
  if (r === 0) return true;
  const e = errno();
  if (e === abi.errno.ENOENT) return false;
  throw new SystemError("unlink", e, path);
}

export function chmodPath(path: string, mode: number): void {
  const bytes = encoder.encode(path + "\0");
  retry("chmod", () => libc.chmod(bytes, mode), path);
}

const pollBuf = new Uint8Array(abi.pollfd.size);
const pollView = new DataView(pollBuf.buffer);
const pollPtr = ptr(pollBuf);

/**
 * poll(2) on one fd; returns revents (0 on timeout). EINTR is retried with the full timeout again
 * (acceptable for the blocking helpers that use it).
 */
export function pollOne(fd: number, events: number, timeoutMs: number): number {
  pollView.setInt32(abi.pollfd.fd.offset, fd, true);
  pollView.setInt16(abi.pollfd.events.offset, events, true);
  pollView.setInt16(abi.pollfd.revents.offset, 0, true);
  const n = retry("poll", () => libc.poll(pollPtr, 1, timeoutMs));
  return n === 0 ? 0 : pollView.getUint16(abi.pollfd.revents.offset, true);
}

export function getpid(): number {
  return libc.getpid();
}
export function getuid(): number {
  return libc.getuid();
}
export function geteuid(): number {
  return libc.geteuid();
}
export function getgid(): number {
  return libc.getgid();
}

/** RLIMIT_NOFILE soft limit, or null when unlimited/unrepresentable/unavailable. */
export function nofileSoftLimit(): number | null {
  if (libc.getrlimit(K.RLIMIT_NOFILE, rlimitPtr) !== 0) return null;
  const cur = rlimitView.getBigUint64(abi.rlimit.cur.offset, true);
  if (cur >= abi.rlimit.infinity || cur > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return Number(cur);
}
