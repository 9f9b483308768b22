/**
 * Adopters: serve a received listening socket with Bun.listen, node:net, node:http or Bun.serve.
 *
 * Each adopter takes ownership of the received fd only when it succeeded (the server then closes it
 * on stop/close); on failure the fd stays with the caller. Each one verifies that the server really
 * listens on the received address and throws otherwise — never serve on a wrong port silently
 * (Bun.serve({ fd }) and http.Server.listen({ fd }) do exactly that on Bun 1.4.5, so they are refused).
 *
 * Given a ReceivedListener of a handoff that has not committed yet, an adopter serves it without
 * accepting: right after the server registers the fd (synchronously, before the event loop can run)
 * its AcceptGate is paused, and Handoff.ready() resumes it after the old side's done frame. Given a
 * bare OwnedFd, the server accepts at once.
 */
import type * as net from "node:net";
import type * as http from "node:http";
import { isHttpServer, isNetServer, nodeHttp, nodeNet } from "./node-modules.ts";
import { OwnedFd } from "../owned-fd.ts";
import { UnixAncillaryError } from "../errors.ts";
import * as sys from "../sys.ts";
import { deferredStarts, type ReceivedListener } from "./client.ts";
import { AcceptGate } from "./gate.ts";
import { describeSocket, type ListenerInfo } from "../sockinfo.ts";
import { ADOPTED, adoptedRegistry, drainSource, socketInode, type AdoptedHandle } from "./sources.ts";
import { drainListener, nodeHttpAdapter, rawAdapter, trackBunListenHandlers, trackNetServer, type DrainListenerOptions, type DrainReport } from "./drain.ts";

/** What the adopters take: a received listener, or a listening socket you own (consumed by the call). */
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

/**
 * If `input` belongs to a handoff that has not committed, stop `fd` from accepting now and register
 * the start (resume + `afterStart`, e.g. a self-check) to run at the commit. Returns whether it deferred.
 */
export function deferAccepting(input: ListenerInput, fd: number, afterStart?: () => void | Promise<void>): boolean {
  const defer = typeof input === "object" && input !== null ? deferredStarts.get(input) : undefined;
  if (!defer) return false;
  const gate = new AcceptGate(fd);
  gate.pause();
  defer(async () => {
    gate.resume();
    await afterStart?.();
  });
  return true;
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
  const tracked = trackBunListenHandlers((options.socket ?? {}) as Record<string, any>);
  const listener = Bun.listen({ ...(options as object), socket: tracked.handlers, fd: n } as never) as unknown as Bun.TCPSocketListener<T> & { fd?: number };
  tracked.attach(listener);
  const lfd = typeof listener.fd === "number" ? listener.fd : n;
  deferAccepting(input, lfd); // same tick as Bun.listen: nothing was accepted yet
  const port = (listener as { port?: number }).port;
  if (!sameAddress(info, lfd) || (inode !== null && socketInode(lfd) !== inode) || (info.family !== "unix" && port !== undefined && port !== info.port)) {
    listener.stop(true);
    throw adoptError(`Bun.listen did not take the received socket (${info.address}:${info.port}); it reports fd ${lfd}, port ${port}. Refusing to serve on a wrong address.`);
  }
  owned.release(); // Bun owns the fd now: listener.stop() closes it
  const handle: AdoptedHandle = {
    fd: () => (typeof listener.fd === "number" ? listener.fd : lfd),
    info,
    adapter: () =>
      rawAdapter("bun-listen", listener, info, async () => {
        listener.stop(false);
        return true;
      }),
  };
  adoptedRegistry.set(listener, handle);
  return listener;
}

// ---- node:net -----------------------------------------------------------------------------------

/** net.Server.listen({ fd }) (works on Bun 1.4.5), then checks server.address() against the received socket. */
export async function adoptNetServer(input: ListenerInput, server: net.Server = nodeNet().createServer()): Promise<net.Server> {
  if (!isNetServer(server) || isHttpServer(server)) {
    throw new TypeError("adoptNetServer: expected a net.Server (for http.Server use adoptNodeHttp: http.Server.listen({ fd }) binds a random port on Bun)");
  }
  if (server.listening) throw adoptError("adoptNetServer: the server is already listening");
  const { owned, info } = inputFd(input, "adoptNetServer");
  const n = owned.fd;
  trackNetServer(server);
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once("error", onError);
    server.listen({ fd: n }, () => {
      server.off("error", onError);
      resolve();
    });
    // listen() registered the fd synchronously; pause it before the event loop can accept on it.
    deferAccepting(input, (server as unknown as { _handle?: { fd?: number } })._handle?.fd ?? n);
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
    adapter: () =>
      rawAdapter("net.Server", server, info, async () => {
        server.close();
        return true;
      }),
  });
  return server;
}

// ---- node:http ----------------------------------------------------------------------------------

/** A received listener served by node:http (adoptNodeHttp): the server, its real address, drain and stop. */
export interface AdoptedNodeHttp {
  readonly [ADOPTED]: AdoptedHandle;
  http: http.Server;
  net: net.Server;
  /** The real listening address (the received socket's). */
  address: ListenerInfo;
  url: string;
  /** Drains (drain.ts): Connection: close during the window, idle connections closed after it, the rest cut at graceMs (default 10 s). */
  drain(opts?: number | DrainListenerOptions): Promise<DrainReport>;
  close(): Promise<void>;
}

/**
 * node:http on a received socket: a net.Server listens on the fd and hands each connection to the
 * http.Server ('connection' event). http.Server.listen({ fd }) itself is refused: on Bun 1.4.5 it
 * silently listens on a random port.
 */
export async function adoptNodeHttp(input: ListenerInput, server: http.Server | http.RequestListener): Promise<AdoptedNodeHttp> {
  const httpServer = isHttpServer(server) ? server : nodeHttp().createServer(server as http.RequestListener);
  if (httpServer.listening) throw adoptError("adoptNodeHttp: the http.Server is already listening");
  const netServer = nodeNet().createServer((sock) => httpServer.emit("connection", sock));
  const info = inputFd(input, "adoptNodeHttp").info;
  await adoptNetServer(input, netServer);
  const netHandle = adoptedRegistry.get(netServer)!;
  const handle: AdoptedHandle = {
    fd: () => netHandle.fd(),
    info,
    adapter: () => nodeHttpAdapter(httpServer, netServer, info),
  };
  adoptedRegistry.set(httpServer, handle);
  adoptedRegistry.set(netServer, handle);
  return {
    [ADOPTED]: handle,
    http: httpServer,
    net: netServer,
    address: info,
    url: urlFor(info),
    drain: (o = {}) => drainListener(handle.adapter(), typeof o === "number" ? { graceMs: o } : o),
    close: async () => {
      await drainListener(handle.adapter(), { graceMs: 0 });
    },
  };
}

/** Drains any source (re-exported for adopters' callers). */
export { drainSource };
