/**
 * Turning the server objects a caller offers (Bun.serve, Bun.listen, net.Server, http.Server, an
 * OwnedFd or fd number, or a server this library adopted) into the listening fd behind them, and
 * stopping them gracefully after a successful handoff.
 */
import { nodeFs } from "../node-fs.ts";
import type * as net from "node:net";
import type * as http from "node:http";
import { isHttpServer, isNetServer } from "./node-modules.ts";
import { OwnedFd } from "../owned-fd.ts";
import { UnixAncillaryError } from "../errors.ts";
import { describeSocket, findListenerByPath, findListenerByPort, type ListenerInfo, type ProbedListener } from "../sockinfo.ts";
import { bunServeAdapter, drainListener, nodeHttpAdapter, rawAdapter, type DrainAdapter, type DrainListenerOptions, type DrainReport } from "./drain.ts";

/** Something that can be offered under a name. */
export type HandoffSource =
  // `| undefined` spelled out: Bun's types say `port: number | undefined`, which a consumer with
  // exactOptionalPropertyTypes could not pass to a bare `port?: number`.
  | { fetch: unknown; port?: number | undefined; hostname?: string | undefined; stop: (force?: boolean) => unknown } // Bun.Server
  | { stop: (force?: boolean) => unknown; hostname?: string | undefined; port?: number | undefined; unix?: string | undefined } // Bun.TCPSocketListener
  | net.Server
  | http.Server
  | OwnedFd
  | number
  | AdoptedLike;

/** Objects made by this library's adopters carry their real fd and a stop routine. */
export interface AdoptedLike {
  readonly [ADOPTED]: AdoptedHandle;
}
export interface AdoptedHandle {
  /** The listening fd currently serving (validated before use). */
  fd(): number;
  info: ListenerInfo;
  /** The drain adapter for this server (drain.ts). */
  adapter(): DrainAdapter;
}
export const ADOPTED: unique symbol = Symbol.for("unix-ancillary.handoff.adopted");

/** Server objects adopted by this library: Bun.Server instances cannot carry our symbol reliably. */
export const adoptedRegistry = new WeakMap<object, AdoptedHandle>();

export function socketInode(fd: number): string | null {
  try {
    const t = nodeFs().readlinkSync(`/proc/self/fd/${fd}`);
    return t.startsWith("socket:") ? t : null;
  } catch {
    return null;
  }
}

function uniqueSockets(list: ProbedListener[]): ProbedListener[] {
  const seen = new Map<string, ProbedListener>();
  for (const l of list) {
    const key = socketInode(l.fd) ?? `fd${l.fd}`;
    if (!seen.has(key)) seen.set(key, l);
  }
  return [...seen.values()];
}

function errorFor(name: string, msg: string): UnixAncillaryError {
  return new UnixAncillaryError("ERR_UA_PROTOCOL", `handoff listener "${name}": ${msg}`);
}

function byPort(name: string, kind: string, port: unknown, host: unknown): ResolvedSource {
  if (typeof port !== "number" || !Number.isInteger(port) || port <= 0) throw errorFor(name, `${kind} reports no TCP port (is it listening?)`);
  const found = uniqueSockets(findListenerByPort(port, typeof host === "string" ? host : undefined));
  if (found.length === 0) throw errorFor(name, `no listening socket of this process is bound to port ${port}${typeof host === "string" ? ` (${host})` : ""}`);
  if (found.length > 1) {
    throw errorFor(name, `${found.length} listening sockets match port ${port} (${found.map((f) => `${f.address} fd ${f.fd}`).join(", ")}); pass the fd as an OwnedFd instead`);
  }
  return { fd: found[0]!.fd, info: strip(found[0]!) };
}

function strip(p: ProbedListener): ListenerInfo {
  return { family: p.family, address: p.address, port: p.port, type: p.type, listening: p.listening };
}

export interface ResolvedSource {
  fd: number;
  info: ListenerInfo;
}

function fromFd(name: string, fd: number): ResolvedSource {
  const info = describeSocket(fd);
  if (!info) throw errorFor(name, `fd ${fd} is not an open IPv4/IPv6/Unix socket`);
  if (info.type === "stream" && !info.listening) throw errorFor(name, `fd ${fd} is a stream socket that is not listening`);
  return { fd, info };
}

function isBunServer(x: any): boolean {
  return typeof x === "object" && x !== null && typeof x.fetch === "function" && typeof x.stop === "function" && "pendingRequests" in x;
}
function isBunListener(x: any): boolean {
  return typeof x === "object" && x !== null && typeof x.stop === "function" && typeof x.reload === "function" && !isBunServer(x) && !isNetServer(x);
}

/** Finds the listening fd behind `src` right now. Throws a clear error if it cannot be found. */
export function resolveSource(name: string, src: HandoffSource): ResolvedSource {
  const s = src as any;
  if (typeof s === "number") return fromFd(name, s);
  if (s instanceof OwnedFd) return fromFd(name, s.fd);
  if (s !== null && typeof s === "object") {
    const adopted: AdoptedHandle | undefined = s[ADOPTED] ?? adoptedRegistry.get(s);
    if (adopted) {
      const fd = adopted.fd();
      const now = describeSocket(fd);
      if (!now || !now.listening || now.address !== adopted.info.address || now.port !== adopted.info.port) {
        throw errorFor(name, `the adopted server's socket (fd ${fd}) is gone or changed; was it stopped?`);
      }
      return { fd, info: now };
    }
    if (isBunServer(s)) {
      const url: URL | undefined = s.url instanceof URL ? s.url : undefined;
      if (url && url.protocol === "unix:") {
        const found = uniqueSockets(findListenerByPath(decodeURIComponent(url.pathname)));
        if (found.length === 1) return { fd: found[0]!.fd, info: strip(found[0]!) };
      }
      return byPort(name, "Bun.serve server", s.port, s.hostname);
    }
    if (isHttpServer(s) || isNetServer(s)) {
      const handleFd = (s as any)._handle?.fd;
      if (typeof handleFd === "number" && handleFd >= 0) return fromFd(name, handleFd);
      const a = s.address();
      if (a === null) throw errorFor(name, "the server is not listening");
      if (typeof a === "string") {
        const found = uniqueSockets(findListenerByPath(a));
        if (found.length !== 1) throw errorFor(name, `cannot find the listening socket for ${a}`);
        return { fd: found[0]!.fd, info: strip(found[0]!) };
      }
      return byPort(name, isHttpServer(s) ? "http.Server" : "net.Server", a.port, a.address);
    }
    if (isBunListener(s)) {
      if (typeof s.fd === "number" && s.fd >= 0) return fromFd(name, s.fd);
      if (typeof s.unix === "string" && s.unix) {
        const found = uniqueSockets(findListenerByPath(s.unix));
        if (found.length === 1) return { fd: found[0]!.fd, info: strip(found[0]!) };
      }
      return byPort(name, "Bun.listen listener", s.port, s.hostname);
    }
  }
  throw new TypeError(`handoff listener "${name}": expected a Bun.serve server, a Bun.listen listener, a net.Server, an http.Server, an OwnedFd or an fd number`);
}

/** The drain adapter for `src`, or null for a bare fd (the caller owns it and decides). */
export function adapterFor(src: HandoffSource): DrainAdapter | null {
  const s = src as any;
  if (typeof s === "number" || s instanceof OwnedFd) return null;
  const adopted: AdoptedHandle | undefined = s?.[ADOPTED] ?? adoptedRegistry.get(s);
  if (adopted) return adopted.adapter();
  let info: ListenerInfo | null = null;
  try {
    info = resolveSource("drain", src).info;
  } catch {
    // already stopped: nothing to inspect
  }
  if (isBunServer(s)) return bunServeAdapter(s, info);
  if (isHttpServer(s)) return nodeHttpAdapter(s, s, info);
  if (isNetServer(s)) {
    return rawAdapter("net.Server", s, info, async () => {
      s.close();
      return true;
    });
  }
  if (isBunListener(s)) {
    return rawAdapter("bun-listen", s, info, async () => {
      s.stop(false);
      return true;
    });
  }
  return null;
}

/**
 * Drains `src` after the process stopped accepting (drain.ts: window with Connection: close, then
 * idle connections without unread input are closed, then the hard limit). A bare fd is left alone.
 */
export async function drainSource(src: HandoffSource, opts: DrainListenerOptions = {}): Promise<DrainReport> {
  const a = adapterFor(src);
  if (!a) return { kind: "fd", forced: false, elapsedMs: 0, windowMs: 0, websocketsClosed: 0, connectionsNotified: 0 };
  return drainListener(a, opts);
}

/** Bun.serve: the drain.ts loop (kept under its old name). */
export function drainBunServer(s: { stop(force?: boolean): unknown; closeIdleConnections?(): void; pendingRequests: number }, graceMs: number): Promise<DrainReport> {
  return drainSource(s as never, { graceMs });
}
