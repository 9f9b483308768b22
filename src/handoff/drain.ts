/**
 * One drain loop for every kind of old-side server (Bun.serve, node:http, net.Server, Bun.listen),
 * through small adapters, so a later connection pool can reuse it.
 *
 * The loop, after the process stopped accepting (AcceptGate, at the commit):
 *   1. drain window (default 1000 ms): every HTTP response carries `Connection: close`, so each
 *      keep-alive client sends its next request on a new connection (accepted by the successor); a
 *      request that arrives on an idle connection meanwhile is still answered. Raw TCP servers get
 *      `onConnection(c)` once per open connection: the app ends it at a message boundary.
 *   2. after the window: WebSockets are closed with 1001 (going away); an idle connection is closed
 *      only if it has no unread bytes (poll POLLIN: nothing queued, no FIN) and the server considers
 *      it idle — never one whose next request is already on its way.
 *   3. at `graceMs` (the hard limit, default 10 000 ms) whatever is left is cut (`forced: true`).
 *
 * Ownership: nothing here opens fds; connection fds are only inspected (poll, getsockname), and
 * servers close their own connections and listening fd.
 */
import * as net from "node:net";
import * as http from "node:http";
import { K } from "../platform/index.ts";
import * as sys from "../sys.ts";
import { describeSocket, openFdNumbers, type ListenerInfo } from "./sockinfo.ts";
import { numberOption, MAX_TIMEOUT_MS } from "./validate.ts";

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

export interface DrainListenerOptions {
  /** Hard limit: in-flight work may run until then, then everything left is cut (default 10 000 ms). */
  graceMs?: number;
  /** Drain window: `Connection: close` on every response, idle connections kept open (default 1000 ms, clamped to graceMs). */
  windowMs?: number;
  /** Raw TCP (Bun.listen, net.Server): called once per open connection at the start of the drain. */
  onConnection?: (c: DrainConnection) => void;
  /** Check interval (default 10 ms). */
  pollMs?: number;
}

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
  /** Connections of this listener whose unread input means a request is on its way. */
  unreadInput(): boolean;
  /** Close idle connections (only called when unreadInput() was false in the same tick). */
  closeIdle(): void;
  /** Whether nothing is left to wait for. */
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
    if (!ctl.draining) return r;
    return r instanceof Promise ? r.then(markClose) : markClose(r);
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
    unreadInput: () => (info ? connectionFds(info).some(hasUnreadInput) : false),
    closeIdle() {
      server.closeIdleConnections?.();
    },
    finished() {
      // pendingRequests counts requests being handled; a few quiet polls cover a request Bun has read
      // but not dispatched yet.
      if (server.pendingRequests === 0 && (server.pendingWebSockets ?? 0) === 0) quiet++;
      else quiet = 0;
      return quiet >= 5;
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
      await server.stop(force || true);
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
    unreadInput: () => (info ? connectionFds(info).some(hasUnreadInput) : false),
    closeIdle() {
      (httpServer as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
    },
    finished() {
      if (separate) return closed;
      if (active === 0) quiet++;
      else quiet = 0;
      return quiet >= 5;
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
    unreadInput: () => false,
    closeIdle() {},
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Drains one server through its adapter (see the module comment). */
export async function drainListener(target: DrainAdapter, opts: DrainListenerOptions = {}): Promise<DrainReport> {
  const graceMs = numberOption("graceMs", opts.graceMs, 0, MAX_TIMEOUT_MS, 10_000);
  const windowMs = Math.min(graceMs, numberOption("windowMs", opts.windowMs, 0, MAX_TIMEOUT_MS, 1000));
  const pollMs = numberOption("pollMs", opts.pollMs, 1, 1000, 10);
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
  // 1. the window: answer everything, close nothing (a raw server may finish early).
  while (performance.now() - started < windowMs) {
    if (target.connections && target.finished()) break;
    await sleep(pollMs);
  }
  // 2. WebSockets go away; idle connections without unread input are closed until nothing is left.
  const websocketsClosed = target.closeWebSockets?.() ?? 0;
  let done = false;
  while (performance.now() < hard) {
    if (!target.unreadInput()) target.closeIdle();
    if (target.finished()) {
      done = true;
      break;
    }
    await sleep(pollMs);
  }
  // 3. the hard limit
  await target.end(!done).catch(() => {});
  return { kind: target.kind, forced: !done, elapsedMs: performance.now() - started, windowMs, websocketsClosed, connectionsNotified: notified };
}
