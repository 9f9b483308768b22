/**
 * Socket introspection for the handoff: what a listening fd is (family, address, port, type) and
 * which fd of this process is the listening socket behind a server object that exposes none
 * (Bun.serve, http.Server): probe every open fd with getsockopt(SO_ACCEPTCONN) + getsockname and
 * match the address (docs/design.md, "Adopting sockets in Bun servers"). No fd is created or closed here.
 */
import { K } from "./platform/index.ts";
import * as sys from "./sys.ts";
import { nodeFs } from "./node-fs.ts";

/** Address family of a socket: IPv4, IPv6 or Unix. */
export type ListenerFamily = "ipv4" | "ipv6" | "unix";
/** Socket type: stream, datagram or seqpacket. */
export type ListenerType = "stream" | "datagram" | "seqpacket";

/** Metadata of a listening (or bound) socket, as sent in an offer and returned to the new side. */
export interface ListenerInfo {
  family: ListenerFamily;
  /** IP address ("127.0.0.1", "::") or the Unix socket path ("\0name" for abstract). */
  address: string;
  /** TCP port; 0 for Unix sockets. */
  port: number;
  type: ListenerType;
  /** Whether SO_ACCEPTCONN is set (listen() was called). */
  listening: boolean;
}

const TYPE_NAMES = new Map<number, ListenerType>([
  [K.SOCK_STREAM, "stream"],
  [K.SOCK_DGRAM, "datagram"],
  [K.SOCK_SEQPACKET, "seqpacket"],
]);

/** Describes a socket fd; returns null if `fd` is not an open socket of a supported family. */
export function describeSocket(fd: number): ListenerInfo | null {
  let type: number;
  let listening: boolean;
  let addr: sys.SocketAddress;
  try {
    type = sys.getsockoptInt(fd, K.SOL_SOCKET, K.SO_TYPE);
    listening = sys.getsockoptInt(fd, K.SOL_SOCKET, K.SO_ACCEPTCONN) !== 0;
    addr = sys.getsockname(fd);
  } catch {
    return null;
  }
  const t = TYPE_NAMES.get(type);
  if (t === undefined) return null;
  if (addr.family === "ipv4" || addr.family === "ipv6") return { family: addr.family, address: addr.address, port: addr.port, type: t, listening };
  if (addr.family === "unix") return { family: "unix", address: addr.path, port: 0, type: t, listening };
  return null;
}

/** Open fd numbers of this process (Linux /proc/self/fd, else /dev/fd, else 0..1023). */
export function openFdNumbers(): number[] {
  const { readdirSync } = nodeFs();
  for (const dir of ["/proc/self/fd", "/dev/fd"]) {
    try {
      return readdirSync(dir)
        .map(Number)
        .filter((n) => Number.isInteger(n) && n >= 0)
        .sort((a, b) => a - b);
    } catch {
      // try the next source
    }
  }
  return Array.from({ length: 1024 }, (_, i) => i);
}

export interface ProbedListener extends ListenerInfo {
  fd: number;
}

/** Every listening stream socket of this process. */
export function listeningSockets(): ProbedListener[] {
  const out: ProbedListener[] = [];
  for (const fd of openFdNumbers()) {
    const info = describeSocket(fd);
    if (info && info.listening && info.type === "stream") out.push({ fd, ...info });
  }
  return out;
}

function sameHost(a: string, b: string | undefined): boolean {
  if (b === undefined || b === "") return true;
  const norm = (s: string) => {
    let x = s.toLowerCase();
    if (x.startsWith("[") && x.endsWith("]")) x = x.slice(1, -1);
    if (x.startsWith("::ffff:")) x = x.slice(7);
    if (x === "localhost") return "127.0.0.1";
    if (x === "0.0.0.0" || x === "::" || x === "0:0:0:0:0:0:0:0") return "*";
    return x;
  };
  const na = norm(a), nb = norm(b);
  return na === nb || na === "*" || nb === "*";
}

/**
 * Every listening TCP socket bound to `port` (and matching `host` if given), minus `exclude`. Several
 * sockets may share a port (an IPv4 and an IPv6 one, or SO_REUSEPORT siblings): the caller decides.
 */
export function findListenerByPort(port: number, host?: string, exclude?: ReadonlySet<number>): ProbedListener[] {
  return listeningSockets().filter((l) => l.port === port && (l.family === "ipv4" || l.family === "ipv6") && sameHost(l.address, host) && !exclude?.has(l.fd));
}

/** Finds the listening Unix stream socket bound to `path`. */
export function findListenerByPath(path: string): ProbedListener[] {
  return listeningSockets().filter((l) => l.family === "unix" && l.address === path);
}
