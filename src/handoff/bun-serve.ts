/**
 * adoptBunServe: serve a received listening socket with Bun.serve itself (Linux).
 *
 * Bun.serve({ fd }) silently ignores the fd and binds :3000 on Bun 1.4.5, so it is refused. Instead:
 *   1. start Bun.serve on an ephemeral 127.0.0.1 port with the caller's handlers (+ a probe route),
 *   2. find its listening fd K by probing (SO_ACCEPTCONN + getsockname = that port),
 *   3. find K's registration in Bun's epoll set (/proc/self/fdinfo),
 *   4. dup3(received, K) and re-add K with the same events/data (epoll.ts),
 *   5. self-check: real HTTP requests must reach *this* server's handler (a random token in a probe
 *      header). Within a handoff that has not committed, the app is probed on the private ephemeral
 *      port before the swap (step 4 then leaves K paused: no accept before the commit), and the
 *      received address is probed again right after the commit, before the serving frame. Otherwise
 *      the received address is probed at once (the old process may share the queue: several tries).
 * If any step fails, it falls back loudly (console.warn + `fallback: true`) to node:http on the
 * received socket (net.Server + 'connection'), driving the same fetch handler — or throws, with
 * `fallback: "throw"` or when the options use features the fallback cannot serve (routes, websocket).
 *
 * Bun.serve's own `port`/`url` keep reporting the ephemeral port: use the result's `address`/`url`.
 */
import type * as http from "node:http";
import type { Readable as NodeReadable } from "node:stream";
import { abi } from "../platform/index.ts";
import * as sys from "../sys.ts";
import { ADOPTED, adoptedRegistry, socketInode, type AdoptedHandle } from "./sources.ts";
import { bunServe, bunServeAdapter, drainListener, type DrainListenerOptions, type DrainReport } from "./drain.ts";
import { findListenerByPort, describeSocket, type ListenerInfo } from "../sockinfo.ts";
import { epollSupported, findEpollRegistrations, replaceRegisteredFd } from "./epoll.ts";
import { adoptError, adoptNodeHttp, connectHost, deferAccepting, inputFd, refuseOptions, urlFor, type ListenerInput } from "./adopt.ts";
import { deferredStarts } from "./client.ts";

/** Header of adoptBunServe's self-check requests (answered by the library, never by your handler). */
export const PROBE_HEADER = "x-unix-ancillary-handoff-probe";
const PROBE_PATH = "/.well-known/unix-ancillary-handoff-probe";

/** Options of adoptBunServe itself (not Bun.serve's). */
export interface AdoptBunServeOptions {
  /** Self-check budget (default { timeoutMs: 5000, attempts: 64 }); false skips it (not recommended). */
  selfCheck?: false | { timeoutMs?: number; attempts?: number };
  /** What to do when Bun.serve cannot adopt: "node-http" (default; warns) or "throw". */
  fallback?: "node-http" | "throw";
  /** Where the fallback warning goes (default console.warn). */
  warn?: (message: string) => void;
}

/** What both kinds of AdoptedBunServe share. */
interface AdoptedBunServeBase {
  readonly [ADOPTED]: AdoptedHandle;
  /** The real listening address (the received socket's). */
  readonly address: ListenerInfo;
  readonly url: string;
  /**
   * Drains (docs/handoff.md, "drain"): Connection: close on every response, WebSockets 1001 after the
   * window, idle keep-alive connections left to the client or the server's idleTimeout, whatever is
   * left cut at graceMs (default 10 s). A number is graceMs.
   */
  drain(opts?: number | DrainListenerOptions): Promise<DrainReport>;
  /** Stops serving; `force` cuts open connections at once. The adopted socket is closed. */
  stop(force?: boolean): Promise<void>;
}

/** Bun.serve serves the received socket. */
export interface AdoptedByBunServe<WebSocketData = undefined> extends AdoptedBunServeBase {
  readonly kind: "bun-serve";
  readonly fallback: false;
  readonly fallbackReason: null;
  /** The Bun.serve server. Its own port/url are the private ephemeral ones: use `address`/`url`. */
  readonly server: Bun.Server<WebSocketData>;
  readonly http: null;
}

/** The node:http fallback serves the received socket (with your fetch handler). */
export interface AdoptedByNodeHttp extends AdoptedBunServeBase {
  readonly kind: "node-http";
  readonly fallback: true;
  /** Why Bun.serve could not adopt the socket. */
  readonly fallbackReason: string;
  readonly server: null;
  readonly http: http.Server;
}

/** What adoptBunServe resolves to: check `kind` ("bun-serve" → `server`, "node-http" → `http`). */
export type AdoptedBunServe<WebSocketData = undefined> = AdoptedByBunServe<WebSocketData> | AdoptedByNodeHttp;

/** Bun.serve options adoptBunServe refuses: the address comes from the received socket; no TLS yet. */
export type RefusedServeOption = "fd" | "port" | "hostname" | "unix" | "reusePort" | "ipv6Only" | "tls";

/**
 * Bun.serve's own options (Bun.Serve.Options, from bun-types) minus the ones adoptBunServe refuses:
 * handlers, `routes`, `websocket` (typed by `WebSocketData`), `error`, `development`, `idleTimeout`…
 * A refused option or an unknown key is a compile error.
 */
export type AdoptServeOptions<WebSocketData = undefined, R extends string = string> = Omit<Bun.Serve.HostnamePortServeOptions<WebSocketData>, RefusedServeOption> & {
  readonly [K in RefusedServeOption]?: never;
} & (Bun.Serve.FetchOrRoutes<WebSocketData, R> | Bun.Serve.FetchOrRoutesWithWebSocket<WebSocketData, R>);

type FetchHandler = (this: Bun.Server<unknown>, req: Request, server: Bun.Server<unknown>) => Response | Promise<Response>;

const REFUSED = ["fd", "port", "hostname", "unix", "reusePort", "ipv6Only"] as const satisfies readonly RefusedServeOption[];

function urlOf(info: ListenerInfo): string {
  if (info.family === "unix") return `http://localhost/ (unix:${info.address})`;
  return `http://${info.family === "ipv6" ? `[${info.address}]` : info.address}:${info.port}/`;
}

/**
 * Serves a received listening socket with Bun.serve itself (Linux; elsewhere, or when the adoption
 * cannot be proven, the node:http fallback — see the module comment). Give it what you would give
 * Bun.serve, minus the address options.
 *
 * Ownership: takes `input` (an OwnedFd, number or handoff listener): from the call on it belongs to
 * the returned server, closed by `stop()`/`drain()`; on a throw it has been closed.
 * @throws TypeError (ERR_INVALID_ARG_VALUE) for a refused address option (`port`, `fd`, `unix`…)
 * @throws UnixAncillaryError ERR_UA_PROTOCOL for `tls`, an abstract Unix socket, a closed input, or
 *   when Bun.serve cannot adopt and `fallback: "throw"` was given or the fallback cannot serve the
 *   options (routes, websocket)
 */
export async function adoptBunServe<WebSocketData = undefined, R extends string = string>(
  input: ListenerInput,
  serveOptions: AdoptServeOptions<WebSocketData, R>,
  opts: AdoptBunServeOptions = {},
): Promise<AdoptedBunServe<WebSocketData>> {
  return (await adoptUntyped(input, serveOptions as unknown as UntypedOptions, opts)) as AdoptedBunServe<WebSocketData>;
}

/** The options as the run-time code reads them (a JavaScript caller may pass anything). */
type UntypedOptions = Record<string, any> & { fetch?: FetchHandler };

async function adoptUntyped(input: ListenerInput, serveOptions: UntypedOptions, opts: AdoptBunServeOptions): Promise<AdoptedBunServe<unknown>> {
  refuseOptions("adoptBunServe", serveOptions, REFUSED, "the address comes from the received socket (Bun.serve({ fd }) would silently bind :3000 instead)");
  if (serveOptions?.tls !== undefined) {
    throw adoptError("adoptBunServe: tls is not supported on adopted sockets yet (terminate TLS in front, or use adoptNodeHttp with an https-capable setup)");
  }
  const { owned, info } = inputFd(input, "adoptBunServe");
  if (info.family === "unix" && info.address.startsWith("\0")) throw adoptError("adoptBunServe: abstract Unix sockets are not supported");
  const warn = opts.warn ?? ((m: string) => console.warn(m));
  const userFetch = serveOptions.fetch;
  const canFallBack = typeof userFetch === "function" && serveOptions.routes === undefined && serveOptions.websocket === undefined;

  const fallBack = async (reason: string): Promise<AdoptedBunServe<unknown>> => {
    if (opts.fallback === "throw") throw adoptError(`adoptBunServe: Bun.serve could not adopt ${urlOf(info)}: ${reason}`);
    if (!canFallBack) {
      throw adoptError(`adoptBunServe: Bun.serve could not adopt ${urlOf(info)} (${reason}), and the node:http fallback cannot serve ${serveOptions.routes !== undefined ? "routes" : serveOptions.websocket !== undefined ? "websockets" : "without a fetch handler"}`);
    }
    warn(`unix-ancillary/handoff: WARNING: Bun.serve could not adopt ${urlOf(info)} (${reason}); serving it with node:http instead (about 0.4-0.5x Bun.serve throughput).`);
    const a = await adoptNodeHttp(input, nodeBridge(userFetch!, serveOptions.error));
    return {
      [ADOPTED]: a[ADOPTED],
      kind: "node-http",
      fallback: true,
      fallbackReason: reason,
      server: null,
      http: a.http,
      address: info,
      url: a.url,
      drain: (o = {}) => a.drain(o),
      stop: async (force) => void (await a.drain(force ? 0 : 10_000)),
    };
  };

  if (!epollSupported()) return fallBack(`epoll re-registration is Linux-only (this is ${abi.os})`);

  const token = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  const probe = () => new Response(null, { status: 204, headers: { [PROBE_HEADER]: token } });
  const options: Record<string, any> = { ...serveOptions, port: 0, hostname: "127.0.0.1" };
  if (typeof userFetch === "function") {
    options.fetch = function (this: Bun.Server<unknown>, req: Request, server: Bun.Server<unknown>) {
      if (req.headers.get(PROBE_HEADER) === token) return probe();
      return userFetch.call(this, req, server);
    };
  }
  options.routes = { ...(serveOptions.routes ?? {}), [`${PROBE_PATH}/${token}`]: (req: Request) => (req.headers.get(PROBE_HEADER) === token ? probe() : new Response("not found", { status: 404 })) };

  let server: Bun.Server<unknown>;
  try {
    server = bunServe(options);
  } catch (e) {
    return fallBack(`Bun.serve failed to start: ${(e as Error).message}`);
  }
  const matches = findListenerByPort(server.port!, "127.0.0.1").filter((l) => l.address === "127.0.0.1");
  if (matches.length !== 1) {
    await server.stop(true);
    return fallBack(`found ${matches.length} listening fds for Bun.serve's ephemeral port ${server.port}`);
  }
  const K = matches[0]!.fd;
  const deferred = typeof input === "object" && input !== null && deferredStarts.has(input);
  const sc = opts.selfCheck === false ? null : { timeoutMs: opts.selfCheck?.timeoutMs ?? 5000, attempts: opts.selfCheck?.attempts ?? 64 };
  if (deferred && sc) {
    // Warm-up proof before the swap, on the private port: the received socket must not accept yet.
    const ok = await selfCheck({ family: "ipv4", address: "127.0.0.1", port: server.port!, type: "stream", listening: true }, token, sc.timeoutMs, sc.attempts);
    if (!ok.ok) {
      await server.stop(true);
      return fallBack(`self-check failed: ${ok.reason}`);
    }
  }
  const regs = findEpollRegistrations(K);
  if (regs.length !== 1) {
    await server.stop(true);
    return fallBack(`found ${regs.length} epoll registrations of Bun.serve's listening fd ${K} in /proc/self/fdinfo`);
  }
  const reg = regs[0]!;
  try {
    sys.setNonblocking(owned.fd, true);
    replaceRegisteredFd(owned.fd, K, reg);
  } catch (e) {
    // K may now be the received socket without a registration: stopping the server closes K (a dup), not ours.
    await server.stop(true);
    return fallBack(`dup3/epoll_ctl failed: ${(e as Error).message}`);
  }
  const inode = socketInode(owned.fd);
  const after = findEpollRegistrations(K);
  const structural = inode !== null && socketInode(K) === inode && after.length === 1 && after[0]!.data === reg.data && after[0]!.events === reg.events;
  if (!structural) {
    await server.stop(true);
    return fallBack("the epoll re-registration did not hold");
  }

  if (deferred) {
    // Same tick as the re-registration: paused before the loop could accept. At the commit: resume,
    // then prove the received address reaches this handler (the old side no longer accepts).
    deferAccepting(input, K, async () => {
      if (!sc) return;
      const ok = await selfCheck(info, token, sc.timeoutMs, sc.attempts);
      if (!ok.ok) throw adoptError(`adoptBunServe: post-commit self-check on ${urlOf(info)} failed: ${ok.reason}`);
    });
  } else if (sc) {
    const ok = await selfCheck(info, token, sc.timeoutMs, sc.attempts);
    if (!ok.ok) {
      await server.stop(true);
      return fallBack(`self-check failed: ${ok.reason}`);
    }
  }

  owned.close(); // Bun's K holds the socket now; server.stop() releases it
  const fdNow = (): number => {
    const d = describeSocket(K);
    if (!d || socketInode(K) !== inode) throw adoptError("the adopted Bun.serve socket is gone (server stopped?)");
    return K;
  };
  const handle: AdoptedHandle = { fd: fdNow, info, adapter: () => bunServeAdapter(server as never, info) };
  adoptedRegistry.set(server, handle);
  return {
    [ADOPTED]: handle,
    kind: "bun-serve",
    fallback: false,
    fallbackReason: null,
    server,
    http: null,
    address: info,
    url: urlFor(info),
    drain: (o = {}) => drainListener(handle.adapter(), typeof o === "number" ? { graceMs: o } : o),
    stop: async (force) => {
      await server.stop(force);
    },
  };
}

/** Sends probe requests (fresh connection each) until one reaches this process's handler. */
async function selfCheck(info: ListenerInfo, token: string, timeoutMs: number, attempts: number): Promise<{ ok: true } | { ok: false; reason: string }> {
  const deadline = performance.now() + timeoutMs;
  const host = connectHost(info);
  const base = info.family === "unix" ? "http://localhost" : `http://${info.family === "ipv6" ? `[${host}]` : host}:${info.port}`;
  let last = "no attempt";
  for (let i = 0; i < attempts && performance.now() < deadline; i++) {
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), Math.max(1, Math.min(2000, deadline - performance.now())));
    try {
      const res = await fetch(`${base}${PROBE_PATH}/${token}`, {
        headers: { [PROBE_HEADER]: token, connection: "close" },
        keepalive: false,
        signal: ctl.signal,
        ...(info.family === "unix" ? { unix: info.address } : {}),
      } as RequestInit);
      await res.arrayBuffer().catch(() => {});
      if (res.headers.get(PROBE_HEADER) === token) return { ok: true };
      last = `answered by another server (status ${res.status})`;
    } catch (e) {
      last = (e as Error).message;
    } finally {
      clearTimeout(t);
    }
  }
  return { ok: false, reason: `${attempts} probes within ${timeoutMs} ms never reached this server (last: ${last})` };
}

/** node:stream on first use (the fallback only): loading it costs milliseconds of start-up. */
let readableClass: typeof NodeReadable | null = null;
function readable(): typeof NodeReadable {
  return (readableClass ??= (require("node:stream") as typeof import("node:stream")).Readable);
}

/** node:http request listener driving a fetch-style handler (for the fallback). */
export function nodeBridge(fetchHandler: FetchHandler, errorHandler?: (e: Error) => Response | Promise<Response>): http.RequestListener {
  const pseudoServer = {} as Bun.Server<unknown>;
  return async (req, res) => {
    try {
      const host = req.headers.host ?? "localhost";
      const url = `http://${host}${req.url ?? "/"}`;
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        if (v === undefined) continue;
        if (Array.isArray(v)) for (const x of v) headers.append(k, x);
        else headers.set(k, v);
      }
      const hasBody = req.method !== "GET" && req.method !== "HEAD";
      const request = new Request(url, {
        method: req.method,
        headers,
        body: hasBody ? (readable().toWeb(req) as unknown as ReadableStream) : undefined,
        duplex: hasBody ? "half" : undefined,
      } as RequestInit);
      let response: Response;
      try {
        response = await fetchHandler.call(pseudoServer, request, pseudoServer);
      } catch (e) {
        if (!errorHandler) throw e;
        response = await errorHandler(e as Error);
      }
      const outHeaders: Record<string, string | string[]> = {};
      response.headers.forEach((v, k) => {
        if (k === "set-cookie") return;
        outHeaders[k] = v;
      });
      const cookies = response.headers.getSetCookie?.() ?? [];
      if (cookies.length) outHeaders["set-cookie"] = cookies;
      const body = req.method === "HEAD" ? null : new Uint8Array(await response.arrayBuffer());
      if (body && outHeaders["content-length"] === undefined) outHeaders["content-length"] = String(body.byteLength);
      res.writeHead(response.status, response.statusText, outHeaders);
      res.end(body ?? undefined);
    } catch {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end("Internal Server Error");
    }
  };
}
