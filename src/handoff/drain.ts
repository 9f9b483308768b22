/**
 * One drain loop for every kind of old-side server (Bun.serve, node:http, net.Server, Bun.listen),
 * through small adapters, so the worker pool reuses it.
 *
 * The loop, after the process stopped accepting (AcceptGate, at the commit):
 *   1. drain window (default 1000 ms): every HTTP response carries `Connection: close`, so each
 *      keep-alive client sends its next request on a new connection (accepted by the successor).
 *      Raw TCP servers get `onConnection(c)` once per open connection: the app ends it at a message
 *      boundary.
 *   2. after the window: WebSockets are closed with 1001 (going away). HTTP connections are never
 *      closed by the drain while they are idle: a client may be sending its next request at that very
 *      moment, and closing would lose it (RFC 9112 §9.6: only the client can close a keep-alive
 *      connection without that race). A request that arrives is answered with `Connection: close`;
 *      connections left idle are closed by the server's own idle timeout (Bun.serve: `idleTimeout`,
 *      10 s by default), exactly as without a handoff. The drain ends when no connection is left.
 *   3. at `graceMs` (the hard limit, default 10 000 ms) whatever is left is cut (`forced: true`).
 *
 * Ownership: nothing here opens fds; connection fds are only inspected (poll, getsockname), and
 * servers close their own connections and listening fd.
 */
import type * as net from "node:net";
import type * as http from "node:http";
import { K } from "../platform/index.ts";
import * as sys from "../sys.ts";
import { describeSocket, openFdNumbers, type ListenerInfo } from "../sockinfo.ts";
import { numberOption, MAX_TIMEOUT_MS } from "./validate.ts";
import { sleep } from "../async/attempt.ts";

/** A raw TCP connection handed to `onConnection` during a drain. */
export interface DrainConnection {
  /** The server's socket object (net.Socket, or Bun's socket for Bun.listen). */
  socket: unknown;
  remoteAddress: string;
  remotePort: number;
  /** Whether the peer sent bytes this process has not read yet (or a FIN): do not cut it now. */
  hasUnreadInput(): boolean;
  /** Ends the connection gracefully (FIN after pending writes). */
  shutdown(): void;
}

/** Options of the drain loop (drainListener, drainSource, HandoffServer.drain, the pool). */
export interface DrainListenerOptions {
  /** Hard limit: in-flight work may run until then, then everything left is cut (default 10 000 ms). */
  graceMs?: number;
  /** Drain window: `Connection: close` on every response, idle connections kept open (default 1000 ms, clamped to graceMs). */
  windowMs?: number;
  /** Raw TCP (Bun.listen, net.Server): called once per open connection at the start of the drain. */
  onConnection?: (c: DrainConnection) => void;
  /** Check interval (default 25 ms: a check may scan the process's open fds). */
  pollMs?: number;
}

/** What one drain did: whether it had to cut anything, how long it took, what it closed. */
export interface DrainReport {
  kind: string;
  /** Something was still open at graceMs and was cut. */
  forced: boolean;
  elapsedMs: number;
  windowMs: number;
  /** WebSockets closed with 1001. */
  websocketsClosed: number;
  /** onConnection calls. */
  connectionsNotified: number;
}

/** What the loop needs from a server. */
export interface DrainAdapter {
  readonly kind: string;
  /** Stop accepting (if the gate did not already) and start marking responses `Connection: close`. */
  begin(): void;
  /** Requests (or WebSockets / raw connections) still being served. */
  busy(): number;
  /** Whether nothing is left to wait for: no request in flight and no connection open. */
  finished(): boolean;
  /** WebSockets: close with 1001. Returns how many. */
  closeWebSockets?(): number;
  /** Raw TCP: the open connections. */
  connections?(): DrainConnection[];
  /** Cut everything and release the listener. */
  end(force: boolean): Promise<void>;
}

// ---- connection fds -----------------------------------------------------------------------------

/** Accepted (non-listening) stream sockets of this process whose local address is `info`'s. */
export function connectionFds(info: ListenerInfo): number[] {
  const out: number[] = [];
  for (const fd of openFdNumbers()) {
    const d = describeSocket(fd);
    if (!d || d.listening || d.type !== "stream" || d.family !== info.family) continue;
    if (info.family === "unix" ? d.address === info.address : d.port === info.port) out.push(fd);
  }
  return out;
}

/** Whether any connection accepted by the listener `info` describes is still open in this process. */
function anyConnection(info: ListenerInfo): boolean {
  return connectionFds(info).length > 0;
}

/** Unread bytes (or a FIN) queued on `fd`. */
export function hasUnreadInput(fd: number): boolean {
  try {
    return sys.pollOne(fd, K.POLLIN, 0) !== 0;
  } catch {
    return false;
  }
}

function fdForPeer(info: ListenerInfo, remoteAddress: string, remotePort: number): number | null {
  for (const fd of connectionFds(info)) {
    try {
      const p = sys.getpeername(fd);
      if ((p.family === "ipv4" || p.family === "ipv6") && p.port === remotePort && p.address.replace(/^::ffff:/, "") === remoteAddress.replace(/^::ffff:/, "")) return fd;
    } catch {
      // closed meanwhile
    }
  }
  return null;
}

// ---- Bun.serve ----------------------------------------------------------------------------------

interface BunServeControl {
  draining: boolean;
  websockets: Set<{ close(code?: number, reason?: string): void }>;
}
const bunServeControls = new WeakMap<object, BunServeControl>();

function markClose(res: unknown): unknown {
  if (!(res instanceof Response)) return res;
  try {
    res.headers.set("connection", "close");
    return res;
  } catch {
    // immutable headers (e.g. a Response from fetch): copy
    const copy = new Response(res.body, res);
    copy.headers.set("connection", "close");
    return copy;
  }
}

function wrapHandler(ctl: BunServeControl, f: (...a: any[]) => unknown): (...a: any[]) => unknown {
  return function (this: unknown, ...args: any[]) {
    const r = f.apply(this, args);
    // An async response is marked if the drain began while it was being computed.
    if (r instanceof Promise) return r.then((res) => (ctl.draining ? markClose(res) : res));
    return ctl.draining ? markClose(r) : r;
  };
}

/**
 * Bun.serve wrapped so the handoff can drain it without losing keep-alive requests: while draining,
 * every response from `fetch` and from function `routes` carries `Connection: close`, and WebSockets
 * are tracked so they can be closed with 1001 at the end of the window. Static Response routes are
 * served as is (Bun answers them without calling JS). Otherwise identical to Bun.serve(options).
 */
export function bunServe<T = undefined>(options: Record<string, any>): Bun.Server<T> {
  const ctl: BunServeControl = { draining: false, websockets: new Set() };
  const o: Record<string, any> = { ...options };
  if (typeof o.fetch === "function") o.fetch = wrapHandler(ctl, o.fetch);
  if (o.routes && typeof o.routes === "object") {
    const routes: Record<string, unknown> = {};
    for (const [path, h] of Object.entries(o.routes as Record<string, unknown>)) {
      if (typeof h === "function") routes[path] = wrapHandler(ctl, h as never);
      else if (h && typeof h === "object" && !(h instanceof Response) && !(h instanceof Blob)) {
        const m: Record<string, unknown> = {};
        for (const [method, mh] of Object.entries(h)) m[method] = typeof mh === "function" ? wrapHandler(ctl, mh as never) : mh;
        routes[path] = m;
      } else routes[path] = h;
    }
    o.routes = routes;
  }
  if (o.websocket && typeof o.websocket === "object") {
    const ws = { ...o.websocket };
    const open = ws.open, close = ws.close;
    ws.open = function (this: unknown, s: any, ...rest: any[]) {
      ctl.websockets.add(s);
      return open?.call(this, s, ...rest);
    };
    ws.close = function (this: unknown, s: any, ...rest: any[]) {
      ctl.websockets.delete(s);
      return close?.call(this, s, ...rest);
    };
    o.websocket = ws;
  }
  const server = Bun.serve(o as never) as Bun.Server<T>;
  bunServeControls.set(server, ctl);
  return server;
}

/** Whether `server` came from bunServe() (or an adopter that wraps the same way). */
export function isWrappedBunServe(server: object): boolean {
  return bunServeControls.has(server);
}

type BunServerLike = { stop(force?: boolean): unknown; closeIdleConnections?(): void; pendingRequests: number; pendingWebSockets?: number };

export function bunServeAdapter(server: BunServerLike, info: ListenerInfo | null): DrainAdapter {
  const ctl = bunServeControls.get(server);
  let quiet = 0;
  return {
    kind: ctl ? "bun-serve" : "bun-serve (unwrapped)",
    begin() {
      if (ctl) ctl.draining = true;
    },
    busy: () => server.pendingRequests + (server.pendingWebSockets ?? 0),
    finished() {
      // pendingRequests counts requests being handled, not one Bun has read but not dispatched, nor
      // a connection whose request is still on its way: the open connections decide. A few quiet
      // polls in a row cover a connection accepted between two scans.
      const idle = server.pendingRequests === 0 && (server.pendingWebSockets ?? 0) === 0 && !(info && anyConnection(info));
      quiet = idle ? quiet + 1 : 0;
      return quiet >= 3;
    },
    closeWebSockets() {
      if (!ctl) return 0;
      let n = 0;
      for (const ws of [...ctl.websockets]) {
        try {
          ws.close(1001, "server going away");
          n++;
        } catch {}
      }
      return n;
    },
    async end(force) {
      // Not forced: no connection is left (where they can be seen), so stop(false) only releases the
      // listener; bounded all the same. Forced (graceMs): cut what is left.
      if (!force && (await Promise.race([Promise.resolve(server.stop(false)).then(() => true), sleep(1000).then(() => false)]))) return;
      await server.stop(true);
    },
  };
}

/** From the commit on, responses of a wrapped Bun.serve carry Connection: close. */
export function markDraining(server: unknown): void {
  const ctl = typeof server === "object" && server !== null ? bunServeControls.get(server) : undefined;
  if (ctl) ctl.draining = true;
}

// ---- node:http ----------------------------------------------------------------------------------

export function nodeHttpAdapter(httpServer: http.Server, listener: net.Server, info: ListenerInfo | null): DrainAdapter {
  // Adopted (adoptNodeHttp): a separate net.Server listens; closing it leaves connections alone. A
  // plain http.Server is closed only at the end: on Bun its close() also drops idle keep-alive
  // connections at once, the very race the window avoids.
  const separate = listener !== httpServer;
  let closed = false;
  let active = 0;
  let quiet = 0;
  const onRequest = (_req: http.IncomingMessage, res: http.ServerResponse) => {
    active++;
    res.once("close", () => active--);
    if (!res.headersSent) res.setHeader("connection", "close");
  };
  return {
    kind: "node-http",
    begin() {
      httpServer.prependListener("request", onRequest);
      if (separate) listener.close(() => (closed = true));
    },
    busy: () => active,
    finished() {
      if (separate) return closed; // net.Server's close callback: its last connection ended
      const idle = active === 0 && !(info && anyConnection(info));
      quiet = idle ? quiet + 1 : 0;
      return quiet >= 3;
    },
    async end(force) {
      if (force || !separate) (httpServer as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      if (!separate) httpServer.close();
      httpServer.off("request", onRequest);
    },
  };
}

// ---- raw TCP: net.Server, Bun.listen ------------------------------------------------------------

/** Open connections of net.Servers / Bun.listen listeners, tracked from adoption or serveHandoff on. */
const rawConnections = new WeakMap<object, Set<{ socket: any; remoteAddress: string; remotePort: number }>>();

/** Starts tracking a net.Server's connections (for onConnection during a drain). Idempotent. */
export function trackNetServer(server: net.Server): void {
  if (rawConnections.has(server)) return;
  const set = new Set<{ socket: any; remoteAddress: string; remotePort: number }>();
  rawConnections.set(server, set);
  server.on("connection", (socket: net.Socket) => {
    const e = { socket, remoteAddress: socket.remoteAddress ?? "", remotePort: socket.remotePort ?? 0 };
    set.add(e);
    socket.once("close", () => set.delete(e));
  });
}

/** Wraps Bun.listen socket handlers so the listener's connections are tracked. */
export function trackBunListenHandlers(handlers: Record<string, any>): { handlers: Record<string, any>; attach(listener: object): void } {
  const set = new Set<{ socket: any; remoteAddress: string; remotePort: number }>();
  const byS = new Map<unknown, { socket: any; remoteAddress: string; remotePort: number }>();
  const h = { ...handlers };
  const open = h.open, close = h.close;
  h.open = function (this: unknown, s: any, ...rest: any[]) {
    const e = { socket: s, remoteAddress: s.remoteAddress ?? "", remotePort: s.remotePort ?? 0 };
    set.add(e);
    byS.set(s, e);
    return open?.call(this, s, ...rest);
  };
  h.close = function (this: unknown, s: any, ...rest: any[]) {
    const e = byS.get(s);
    if (e) {
      set.delete(e);
      byS.delete(s);
    }
    return close?.call(this, s, ...rest);
  };
  return { handlers: h, attach: (listener) => rawConnections.set(listener, set) };
}

export function rawAdapter(kind: string, server: object, info: ListenerInfo | null, stop: () => Promise<boolean>): DrainAdapter {
  const set = rawConnections.get(server) ?? new Set();
  let stopped = false;
  return {
    kind,
    begin() {
      void stop().then(() => (stopped = true));
    },
    busy: () => set.size,
    finished: () => set.size === 0 && stopped,
    connections: () =>
      [...set].map((e) => ({
        socket: e.socket,
        remoteAddress: e.remoteAddress,
        remotePort: e.remotePort,
        hasUnreadInput: () => {
          const fd = info ? fdForPeer(info, e.remoteAddress, e.remotePort) : null;
          return fd !== null && hasUnreadInput(fd);
        },
        shutdown: () => {
          try {
            e.socket.end();
          } catch {}
        },
      })),
    async end(force) {
      if (force) for (const e of set) try { e.socket.destroy?.() ?? e.socket.terminate?.() ?? e.socket.end(); } catch {}
    },
  };
}

// ---- the loop -----------------------------------------------------------------------------------


/** Drains one server through its adapter (see the module comment). */
export async function drainListener(target: DrainAdapter, opts: DrainListenerOptions = {}): Promise<DrainReport> {
  const graceMs = numberOption("graceMs", opts.graceMs, 0, MAX_TIMEOUT_MS, 10_000);
  const windowMs = Math.min(graceMs, numberOption("windowMs", opts.windowMs, 0, MAX_TIMEOUT_MS, 1000));
  const pollMs = numberOption("pollMs", opts.pollMs, 1, 1000, 25);
  const started = performance.now();
  const hard = started + graceMs;
  target.begin();
  let notified = 0;
  if (opts.onConnection && target.connections) {
    for (const c of target.connections()) {
      notified++;
      try {
        opts.onConnection(c);
      } catch {
        // the app's hook must not stop the drain
      }
    }
  }
  // 1. the window: answer everything, close nothing; done early once no connection is left.
  let done = false;
  while (performance.now() - started < windowMs) {
    if (target.finished()) {
      done = true;
      break;
    }
    await sleep(Math.min(pollMs, Math.max(1, windowMs - (performance.now() - started))));
  }
  // 2. WebSockets go away; connections end by themselves (see the module comment) until graceMs.
  const websocketsClosed = done ? 0 : (target.closeWebSockets?.() ?? 0);
  while (!done && performance.now() < hard) {
    if (target.finished()) {
      done = true;
      break;
    }
    await sleep(Math.min(pollMs, Math.max(1, hard - performance.now())));
  }
  // 3. the hard limit
  await target.end(!done).catch(() => {});
  return { kind: target.kind, forced: !done, elapsedMs: performance.now() - started, windowMs, websocketsClosed, connectionsNotified: notified };
}
