/**
 * Adopters: serve a received listening socket with Bun.listen, node:net, node:http or Bun.serve.
 *
 * Each adopter takes ownership of the received fd only when it succeeded (the server then closes it
 * on stop/close); on failure the fd stays with the caller. Each one verifies that the server really
 * listens on the received address and throws otherwise — never serve on a wrong port silently
 * (Bun.serve({ fd }) and http.Server.listen({ fd }) do exactly that on Bun 1.4.5, so they are refused).
 */
import * as net from "node:net";
import * as http from "node:http";
import { OwnedFd } from "../owned-fd.ts";
import { UnixAncillaryError } from "../errors.ts";
import * as sys from "../sys.ts";
import type { ReceivedListener } from "./client.ts";
import { describeSocket, type ListenerInfo } from "./sockinfo.ts";
import { ADOPTED, adoptedRegistry, drainSource, socketInode, type AdoptedHandle } from "./sources.ts";

export type ListenerInput = ReceivedListener | OwnedFd | { fd: OwnedFd };

export function adoptError(msg: string): UnixAncillaryError {
  return new UnixAncillaryError("ERR_UA_PROTOCOL", `adopt: ${msg}`);
}

/** The received fd and what it is (re-read from the kernel, not trusted from metadata). */
export function inputFd(input: ListenerInput, what: string): { owned: OwnedFd; info: ListenerInfo } {
  const owned = input instanceof OwnedFd ? input : input?.fd;
  if (!(owned instanceof OwnedFd)) throw new TypeError(`${what}: expected a received listener ({ fd: OwnedFd, ... }) or an OwnedFd`);
  if (owned.closed) throw adoptError(`${what}: the listener's fd is closed (already adopted or released?)`);
  const info = describeSocket(owned.fd);
  if (!info) throw adoptError(`${what}: fd ${owned.fd} is not an IPv4/IPv6/Unix socket`);
  if (info.type !== "stream" || !info.listening) throw adoptError(`${what}: fd ${owned.fd} is not a listening stream socket`);
  return { owned, info };
}

export function refuseOptions(what: string, opts: Record<string, unknown> | undefined, keys: readonly string[], why: string): void {
  if (!opts) return;
  for (const k of keys) {
    if (opts[k] !== undefined) {
      const e = new TypeError(`${what}: option "${k}" is not allowed: ${why}`);
      (e as TypeError & { code: string }).code = "ERR_INVALID_ARG_VALUE";
      throw e;
    }
  }
}

function sameAddress(a: ListenerInfo, fd: number): boolean {
  const now = describeSocket(fd);
  return !!now && now.listening && now.family === a.family && now.address === a.address && now.port === a.port;
}

export function urlFor(info: ListenerInfo): string {
  if (info.family === "unix") return "http://localhost/";
  const host = info.family === "ipv6" ? `[${info.address}]` : info.address;
  return `http://${host}:${info.port}/`;
}

export function connectHost(info: ListenerInfo): string {
  if (info.family === "ipv4") return info.address === "0.0.0.0" ? "127.0.0.1" : info.address;
  if (info.family === "ipv6") return info.address === "::" ? "::1" : info.address;
  return info.address;
}

// ---- Bun.listen ---------------------------------------------------------------------------------

/**
 * Bun.listen on a received socket (`{ fd }` works on Bun 1.4.5 though it is not in the types).
 * `options` are Bun.listen's, minus hostname/port/unix/fd (the address is the received socket's).
 */
export function adoptBunListen<T = undefined>(input: ListenerInput, options: { socket: unknown; data?: T; [k: string]: unknown }): Bun.TCPSocketListener<T> {
  refuseOptions("adoptBunListen", options, ["hostname", "port", "unix", "fd"], "the address comes from the received socket");
  const { owned, info } = inputFd(input, "adoptBunListen");
  const n = owned.fd;
  sys.setNonblocking(n, true);
  const inode = socketInode(n);
  const listener = Bun.listen({ ...(options as object), fd: n } as never) as unknown as Bun.TCPSocketListener<T> & { fd?: number };
  const lfd = typeof listener.fd === "number" ? listener.fd : n;
  const port = (listener as { port?: number }).port;
  if (!sameAddress(info, lfd) || (inode !== null && socketInode(lfd) !== inode) || (info.family !== "unix" && port !== undefined && port !== info.port)) {
    listener.stop(true);
    throw adoptError(`Bun.listen did not take the received socket (${info.address}:${info.port}); it reports fd ${lfd}, port ${port}. Refusing to serve on a wrong address.`);
  }
  owned.release(); // Bun owns the fd now: listener.stop() closes it
  const handle: AdoptedHandle = {
    fd: () => (typeof listener.fd === "number" ? listener.fd : lfd),
    info,
    drain: async () => {
      listener.stop(false);
      return { forced: false };
    },
  };
  adoptedRegistry.set(listener, handle);
  return listener;
}

// ---- node:net -----------------------------------------------------------------------------------

/** net.Server.listen({ fd }) (works on Bun 1.4.5), then checks server.address() against the received socket. */
export async function adoptNetServer(input: ListenerInput, server: net.Server = net.createServer()): Promise<net.Server> {
  if (!(server instanceof net.Server) || server instanceof http.Server) {
    throw new TypeError("adoptNetServer: expected a net.Server (for http.Server use adoptNodeHttp: http.Server.listen({ fd }) binds a random port on Bun)");
  }
  if (server.listening) throw adoptError("adoptNetServer: the server is already listening");
  const { owned, info } = inputFd(input, "adoptNetServer");
  const n = owned.fd;
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once("error", onError);
    server.listen({ fd: n }, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const a = server.address();
  const ok = info.family === "unix" ? typeof a === "string" || a === null || sameAddress(info, n) : typeof a === "object" && a !== null && a.port === info.port;
  if (!ok) {
    server.close();
    throw adoptError(`net.Server did not take the received socket (${info.address}:${info.port}); address() is ${JSON.stringify(a)}. Refusing to serve on a wrong address.`);
  }
  owned.release(); // server.close() closes it
  adoptedRegistry.set(server, {
    fd: () => ((server as unknown as { _handle?: { fd?: number } })._handle?.fd ?? n),
    info,
    drain: (graceMs) => drainNet(server, null, graceMs),
  });
  return server;
}

async function drainNet(srv: net.Server, httpServer: http.Server | null, graceMs: number): Promise<{ forced: boolean }> {
  const started = performance.now();
  const deadline = started + graceMs;
  let closed = false;
  if (httpServer) {
    // Keep-alive clients get "Connection: close" from now on, so they reconnect (to the successor).
    httpServer.prependListener("request", (_req, res) => {
      if (!res.headersSent) res.setHeader("connection", "close");
    });
  }
  srv.close(() => (closed = true));
  while (!closed && performance.now() < deadline) {
    // A connection accepted just before close() has no request yet and counts as "idle": give such
    // requests time to arrive before closing idle connections, or their clients would see a reset.
    if (performance.now() - started > Math.min(250, graceMs / 2)) (httpServer as unknown as { closeIdleConnections?: () => void })?.closeIdleConnections?.();
    await new Promise((r) => setTimeout(r, 10));
  }
  if (!closed) (httpServer as unknown as { closeAllConnections?: () => void })?.closeAllConnections?.();
  return { forced: !closed };
}

// ---- node:http ----------------------------------------------------------------------------------

export interface AdoptedNodeHttp {
  readonly [ADOPTED]: AdoptedHandle;
  http: http.Server;
  net: net.Server;
  /** The real listening address (the received socket's). */
  address: ListenerInfo;
  url: string;
  /** Stops accepting, waits for connections within graceMs (default 10 s), then cuts them. */
  drain(graceMs?: number): Promise<{ forced: boolean }>;
  close(): Promise<void>;
}

/**
 * node:http on a received socket: a net.Server listens on the fd and hands each connection to the
 * http.Server ('connection' event). http.Server.listen({ fd }) itself is refused: on Bun 1.4.5 it
 * silently listens on a random port.
 */
export async function adoptNodeHttp(input: ListenerInput, server: http.Server | http.RequestListener): Promise<AdoptedNodeHttp> {
  const httpServer = server instanceof http.Server ? server : http.createServer(server);
  if (httpServer.listening) throw adoptError("adoptNodeHttp: the http.Server is already listening");
  const netServer = net.createServer((sock) => httpServer.emit("connection", sock));
  const info = inputFd(input, "adoptNodeHttp").info;
  await adoptNetServer(input, netServer);
  const netHandle = adoptedRegistry.get(netServer)!;
  const handle: AdoptedHandle = {
    fd: () => netHandle.fd(),
    info,
    drain: (graceMs) => drainNet(netServer, httpServer, graceMs),
  };
  adoptedRegistry.set(httpServer, handle);
  adoptedRegistry.set(netServer, handle);
  return {
    [ADOPTED]: handle,
    http: httpServer,
    net: netServer,
    address: info,
    url: urlFor(info),
    drain: (graceMs = 10_000) => handle.drain(graceMs),
    close: async () => {
      await handle.drain(0);
    },
  };
}

/** Drains any source (re-exported for adopters' callers). */
export { drainSource };
