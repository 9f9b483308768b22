/**
 * Listening sockets the supervisor opens once and shares with every worker.
 *
 * Ownership: each function returns a fresh OwnedFd (CLOEXEC, blocking: workers' adopters make their
 * own copy non-blocking) owned by the caller; on any failure the socket it created is closed before
 * the error propagates. Fds the caller passes in (`{ fd }`) are duplicated, never taken.
 */
import { ptr } from "bun:ffi";
import { abi, K } from "../platform/index.ts";
import { libc } from "../platform/libc.ts";
import { OwnedFd, adopt } from "../owned-fd.ts";
import { UnixAncillaryError } from "../errors.ts";
import * as sys from "../sys.ts";
import { describeSocket, findListenerByPort, type ListenerInfo } from "../sockinfo.ts";
import { socketInode } from "../handoff/sources.ts";

/** What the pool listens on: a TCP address (numeric IPv4 or IPv6), a Unix socket path, or a socket you opened (systemd, a handoff). */
export type ListenSpec =
  | { name?: string; port: number; host?: string; backlog?: number }
  | { name?: string; path: string; backlog?: number }
  | { name?: string; fd: OwnedFd | number };

/** One listening socket of the pool: its name, the fd the pool owns, and what it is. */
export interface PoolListener {
  name: string;
  fd: OwnedFd;
  info: ListenerInfo;
}

const DEFAULT_BACKLOG = 511;

function invalid(msg: string): TypeError {
  const e = new TypeError(msg) as TypeError & { code: string };
  e.code = "ERR_INVALID_ARG_VALUE";
  return e;
}

function parseIpv4(host: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  return parts.every((p) => p <= 255) ? parts : null;
}

/** RFC 4291 text form ("::1", "fe80::1", "::ffff:10.0.0.1", optionally in brackets) → 16 bytes. */
function parseIpv6(host: string): number[] | null {
  const h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (!/^[0-9a-fA-F:.]+$/.test(h) || !h.includes(":")) return null;
  const halves = h.split("::");
  if (halves.length > 2) return null;
  const groups = (text: string): number[] | null => {
    if (text === "") return [];
    const out: number[] = [];
    const parts = text.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes(".")) {
        const v4 = parseIpv4(p); // an embedded IPv4 address is the last 32 bits
        if (!v4) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) out.push(Number.parseInt(p, 16));
      else return null;
    }
    return out;
  };
  const head = groups(halves[0]!), tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}

/** A numeric IPv4 or IPv6 address ("localhost" is 127.0.0.1) as its family and network-order bytes. */
function parseHost(host: string): { family: number; bytes: number[] } | null {
  const v4 = parseIpv4(host === "localhost" ? "127.0.0.1" : host);
  if (v4) return { family: K.AF_INET, bytes: v4 };
  const v6 = parseIpv6(host);
  return v6 ? { family: K.AF_INET6, bytes: v6 } : null;
}

/**
 * socket + SO_REUSEADDR + bind + listen on a numeric IPv4 or IPv6 address. "::" takes the system's
 * default for IPv4-mapped connections (dual stack on Linux unless net.ipv6.bindv6only is set).
 */
export function openTcpListener(host: string, port: number, backlog = DEFAULT_BACKLOG): OwnedFd {
  const addr = parseHost(host);
  if (!addr) throw invalid(`pool listen: host must be a numeric IPv4 or IPv6 address or "localhost" (got ${JSON.stringify(host)}); for a name, resolve it first or open the socket yourself and pass { fd }`);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalid(`pool listen: port must be an integer 0-65535 (got ${port})`);
  const fd = adopt(sys.socket(addr.family, K.SOCK_STREAM));
  try {
    sys.setsockoptInt(fd.fd, K.SOL_SOCKET, K.SO_REUSEADDR, 1);
    const layout = addr.family === K.AF_INET ? abi.sockaddrIn : abi.sockaddrIn6;
    const buf = new Uint8Array(layout.size);
    const view = new DataView(buf.buffer);
    if (layout.family.size === 1) {
      view.setUint8(0, layout.size); // BSD sin_len / sin6_len
      view.setUint8(layout.family.offset, addr.family);
    } else view.setUint16(layout.family.offset, addr.family, true);
    view.setUint16(layout.port, port, false);
    buf.set(addr.bytes, layout.addr);
    sys.retry("bind", () => libc.bind(fd.fd, ptr(buf), layout.size), `${host}:${port}`);
    sys.listen(fd.fd, backlog);
    return fd;
  } catch (e) {
    fd.close();
    throw e;
  }
}

/** A listening Unix stream socket at `path` (an existing socket file there is replaced). */
export function openUnixListener(path: string, backlog = DEFAULT_BACKLOG): OwnedFd {
  const fd = adopt(sys.socket(K.AF_UNIX, K.SOCK_STREAM));
  try {
    sys.unlinkPath(path);
    sys.bind(fd.fd, path);
    sys.listen(fd.fd, backlog);
    return fd;
  } catch (e) {
    fd.close();
    throw e;
  }
}

/** Opens (or duplicates) every listener of `specs`; on failure closes what it opened. */
export function openListeners(specs: readonly ListenSpec[]): PoolListener[] {
  if (!Array.isArray(specs) || specs.length === 0) throw invalid("pool: `listen` must list at least one listener");
  const out: PoolListener[] = [];
  try {
    specs.forEach((spec, i) => {
      const name = spec.name ?? (i === 0 ? "http" : `listener${i}`);
      if (out.some((l) => l.name === name)) throw invalid(`pool listen: duplicate listener name ${JSON.stringify(name)}`);
      let fd: OwnedFd;
      if ("fd" in spec) {
        const n = spec.fd instanceof OwnedFd ? spec.fd.fd : spec.fd;
        fd = adopt(sys.dupCloexec(n));
      } else if ("path" in spec) fd = openUnixListener(spec.path, spec.backlog);
      else fd = openTcpListener(spec.host ?? "127.0.0.1", spec.port, spec.backlog);
      const info = describeSocket(fd.fd);
      if (!info || info.type !== "stream" || !info.listening) {
        fd.close();
        throw invalid(`pool listen: listener ${JSON.stringify(name)} is not a listening stream socket`);
      }
      out.push({ name, fd, info });
    });
    return out;
  } catch (e) {
    for (const l of out) l.fd.close();
    throw e;
  }
}

/**
 * `count` listening sockets on one TCP address in one SO_REUSEPORT group (the kernel spreads new
 * connections over them by hash). Bun.listen({ reusePort }) creates each socket (so no socket
 * option constant is needed here); the pool keeps a duplicate and stops Bun's listener at once,
 * before the event loop could accept on it. Port 0 picks one port for the whole group.
 */
export function openReusePortGroup(host: string, port: number, count: number): OwnedFd[] {
  if (!parseHost(host)) throw invalid(`pool listen: host must be a numeric IPv4 or IPv6 address or "localhost" (got ${JSON.stringify(host)})`);
  const out: OwnedFd[] = [];
  try {
    for (let i = 0; i < count; i++) {
      // sockets of the group that exist already (ours, other slots', other processes'), by inode
      const known = new Set(port === 0 ? [] : findListenerByPort(port, host).map((x) => socketInode(x.fd)));
      const l = Bun.listen({ hostname: host === "localhost" ? "127.0.0.1" : host.replace(/^\[(.*)\]$/, "$1"), port, reusePort: true, socket: { data() {} } } as never) as unknown as { port: number; stop(force?: boolean): void };
      try {
        port = l.port;
        const mine = findListenerByPort(port, host).filter((x) => !known.has(socketInode(x.fd)));
        if (mine.length !== 1) throw new UnixAncillaryError("ERR_UA_UNSUPPORTED", `pool reusePort: found ${mine.length} new listening sockets on ${host}:${port} for one Bun.listen; cannot tell which is ours`);
        out.push(adopt(sys.dupCloexec(mine[0]!.fd)));
      } finally {
        l.stop(true); // closes Bun's fd only: our duplicate keeps the socket (and its group membership)
      }
    }
    return out;
  } catch (e) {
    for (const f of out) f.close();
    throw e;
  }
}
