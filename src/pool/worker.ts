/**
 * The worker side of a pool: the app is a single-process app plus one call.
 *
 *   const w = await joinPool();
 *   w.serve({ fetch: (req) => new Response("hi") });   // Bun.serve on the pool's shared socket
 *   await w.ready();                                    // warm: start accepting, tell the supervisor
 *
 * The supervisor passes the listening sockets over the worker's private channel ($UA_POOL_FD). The
 * adopters of the handoff serve them *paused* (adopted, not yet accepting); ready() starts accepting
 * (and runs the adopters' self-check), then reports ready. A worker that dies before ready() never
 * accepted a connection, so it loses nothing. On the supervisor's drain the worker stops accepting
 * (AcceptGate: its listening fds leave Bun's epoll set; the other workers accept from the same
 * queue), drains keep-alive connections with the handoff's drain loop, and exits. If the supervisor
 * goes away, the worker drains and exits too (no orphan keeps the port).
 *
 * Ownership: received listening fds are owned by the ReceivedListener objects until an adopter
 * takes them (the adopted server closes them); those no adopter took are closed by ready(). The
 * channel is owned here and closed at exit.
 */
import type * as net from "node:net";
import type * as http from "node:http";
import { isHttpServer, nodeHttp, nodeNet } from "../handoff/node-modules.ts";
import { UnixSeqpacket } from "../socket.ts";
import { OwnedFd } from "../owned-fd.ts";
import { UnixAncillaryError } from "../errors.ts";
import { deferredStarts, type ReceivedListener } from "../handoff/client.ts";
import { adoptBunListen, adoptNetServer, adoptNodeHttp, type AdoptedNodeHttp } from "../handoff/adopt.ts";
import { adoptBunServe, type AdoptBunServeOptions, type AdoptedBunServe } from "../handoff/bun-serve.ts";
import { ADOPTED, adoptedRegistry, type AdoptedHandle } from "../handoff/sources.ts";
import { AcceptGate, pauseGates } from "../handoff/gate.ts";
import { drainListener, connectionFds, type DrainConnection, type DrainReport } from "../handoff/drain.ts";
import * as sys from "../sys.ts";
import { PoolChannel, type Message } from "./channel.ts";

/** Environment variable naming the worker's inherited channel fd. */
export const POOL_FD_ENV = "UA_POOL_FD";
/** Environment variable a worker is started with: its worker id (unique per pool, e.g. for log names). */
export const POOL_WORKER_ENV = "UA_POOL_WORKER";

type DeferredStart = () => void | Promise<void>;

/** Options of joinPool. */
export interface JoinPoolOptions {
  /** Time to receive the supervisor's hello (default 30 000 ms). */
  timeoutMs?: number;
  /** Raw TCP servers (Bun.listen, net.Server): called per open connection when the drain starts. */
  onConnection?: (c: DrainConnection) => void;
  /** Called when the drain starts (before the process stops accepting is confirmed). */
  onDrain?: () => void;
  /** Exit the process after the drain (default true). */
  exitAfterDrain?: boolean;
}

/** Counters a worker reports to the supervisor: accepted connections and handled requests. */
export interface WorkerStats {
  pid: number;
  requests: number;
  /** Accepted connections; -1 when not counted (Bun.serve without countConnections). */
  accepted: number;
}

/** Whether this process was started by a pool supervisor (it has the pool's control fd). */
export function isPoolWorker(): boolean {
  return process.env[POOL_FD_ENV] !== undefined;
}

/**
 * This process's membership in a pool (what joinPool resolves with): the listening sockets to serve
 * (serve(), take()), ready() once serving, and the drain the supervisor triggers.
 *
 * Ownership: the received listening sockets are held here until serve()/take() hands them to an
 * adopter; the control channel is closed when the worker exits.
 */
export class PoolWorker {
  readonly id: number;
  readonly slot: number;
  readonly generation: number;
  readonly #chan: PoolChannel;
  readonly #listeners: Map<string, ReceivedListener>;
  readonly #taken = new Set<string>();
  readonly #starts: DeferredStart[] = [];
  readonly #handles: AdoptedHandle[] = [];
  readonly #opts: JoinPoolOptions;
  #ready = false;
  #draining = false;
  #requests = 0;
  #accepted = 0;
  #acceptedUnknown = false;
  #peers = new Map<number, string>();
  #prunedAt = 0;
  /** Resolves with the drain reports once the supervisor asked this worker to go and it drained. */
  readonly drained: Promise<DrainReport[]>;
  #resolveDrained!: (r: DrainReport[]) => void;

  /** @internal use joinPool() */
  constructor(chan: PoolChannel, hello: Message, listeners: Map<string, ReceivedListener>, opts: JoinPoolOptions) {
    this.#chan = chan;
    this.id = Number(hello.id);
    this.slot = Number(hello.slot);
    this.generation = Number(hello.generation);
    this.#listeners = listeners;
    this.#opts = opts;
    this.drained = new Promise((r) => (this.#resolveDrained = r));
    for (const l of listeners.values()) deferredStarts.set(l, (start) => this.#starts.push(start));
    void this.#loop();
  }

  get listeners(): ReadonlyMap<string, ReceivedListener> {
    return this.#listeners;
  }

  /** Takes a received listener for your own adopter call (it stays paused until ready()). */
  take(name = "http"): ReceivedListener {
    const l = this.#listeners.get(name);
    if (!l) throw new UnixAncillaryError("ERR_UA_PROTOCOL", `pool: no listener named "${name}" (have: ${[...this.#listeners.keys()].join(", ")})`);
    if (this.#taken.has(name)) throw new UnixAncillaryError("ERR_UA_BUSY", `pool: listener "${name}" was already taken`);
    if (this.#ready) throw new UnixAncillaryError("ERR_UA_CLOSED", "pool: take() after ready()");
    this.#taken.add(name);
    return l;
  }

  #track(server: object): void {
    const h = adoptedRegistry.get(server);
    if (h) this.#handles.push(h);
  }

  /**
   * Bun.serve exposes no per-connection hook: a request from a peer address:port not seen on an open
   * connection before is a newly accepted connection. Port -> address map, pruned to the connections
   * still open every 2 s or at 4096 entries: a client port reused by a new connection before the next
   * prune is missed, so the count is a lower bound (measured ~5 % under with fast connection churn).
   */
  #countPeer(port: number, address: string): void {
    if (this.#peers.get(port) === address) return;
    this.#accepted++;
    const now = performance.now();
    if (this.#peers.size >= 4096 || now - this.#prunedAt > 2000) {
      this.#prunedAt = now;
      this.#prunePeers();
    }
    this.#peers.set(port, address);
  }

  /** Keeps only peers whose connection is still open (bounded memory). */
  #prunePeers(): void {
    const open = new Set<string>();
    for (const h of this.#handles) {
      for (const fd of connectionFds(h.info)) {
        try {
          const p = sys.getpeername(fd);
          if (p.family === "ipv4" || p.family === "ipv6") open.add(`${p.port}/${p.address}`);
        } catch {}
      }
    }
    for (const [port, address] of this.#peers) if (!open.has(`${port}/${address}`) && !open.has(`${port}/::ffff:${address}`)) this.#peers.delete(port);
  }

  /**
   * Bun.serve on a pool listener (adoptBunServe: it falls back to node:http, loudly, if it cannot).
   * Counts requests for the supervisor's status; `countConnections: true` also counts accepted
   * connections (Bun.serve has no connection hook: one requestIP() per request), else `accepted` is -1.
   */
  async serve(options: Record<string, any>, opts: AdoptBunServeOptions & { listener?: string; countConnections?: boolean } = {}): Promise<AdoptedBunServe> {
    const userFetch = options.fetch;
    const o = { ...options };
    const { countConnections, ...rest } = opts;
    if (typeof userFetch === "function") {
      const self = this;
      // requestIP() costs a getpeername per request (measured: up to ~20 % of a trivial handler's
      // throughput), so connection counting is opt-in; the request count is a plain increment.
      o.fetch = countConnections
        ? function (this: unknown, req: Request, server: Bun.Server<unknown>) {
            self.#requests++;
            const ip = server?.requestIP?.(req);
            if (ip) self.#countPeer(ip.port, ip.address);
            return userFetch.call(this, req, server);
          }
        : function (this: unknown, req: Request, server: Bun.Server<unknown>) {
            self.#requests++;
            return userFetch.call(this, req, server);
          };
    }
    if (!countConnections) this.#acceptedUnknown = true;
    const { listener, ...adoptOpts } = rest;
    // The warm-up probe runs on Bun.serve's private port before the swap (it reaches only this
    // worker). The post-commit probe on the shared address reaches a random worker, so it gets few
    // attempts and its miss is tolerated in ready(): the swap was already checked structurally
    // (same socket inode, same epoll registration).
    adoptOpts.selfCheck ??= { timeoutMs: 10_000, attempts: 3 };
    const app = await adoptBunServe(this.take(listener ?? "http"), o as never, adoptOpts);
    this.#handles.push(app[ADOPTED]);
    return app;
  }

  /** Bun.listen on a pool listener. */
  listen<T = undefined>(options: { socket: unknown; data?: T; [k: string]: unknown }, name = "http"): Bun.TCPSocketListener<T> {
    const handlers = { ...(options.socket as Record<string, any>) };
    const open = handlers.open;
    handlers.open = (s: unknown, ...rest: unknown[]) => {
      this.#accepted++;
      return open?.call(handlers, s, ...rest);
    };
    const l = adoptBunListen<T>(this.take(name), { ...options, socket: handlers });
    this.#track(l);
    return l;
  }

  /** net.Server on a pool listener. */
  async netServer(server: net.Server = nodeNet().createServer(), name = "http"): Promise<net.Server> {
    server.on("connection", () => this.#accepted++);
    await adoptNetServer(this.take(name), server);
    this.#track(server);
    return server;
  }

  /** node:http on a pool listener. */
  async nodeHttp(server: http.Server | http.RequestListener, name = "http"): Promise<AdoptedNodeHttp> {
    const s = isHttpServer(server) ? server : nodeHttp().createServer(server as http.RequestListener);
    s.on("connection", () => this.#accepted++);
    s.on("request", () => this.#requests++);
    const app = await adoptNodeHttp(this.take(name), s);
    this.#handles.push(app[ADOPTED]);
    return app;
  }

  stats(): WorkerStats {
    return { pid: process.pid, requests: this.#requests, accepted: this.#acceptedUnknown ? -1 : this.#accepted };
  }

  /**
   * The app is warm: start accepting on every adopted listener (and run the adopters' checks), close
   * the listeners nobody took, and tell the supervisor. Throws if a start failed (the supervisor sees
   * this worker fail and keeps the old one).
   */
  async ready(): Promise<void> {
    if (this.#ready) throw new UnixAncillaryError("ERR_UA_CLOSED", "pool: ready() was already called");
    this.#ready = true;
    for (const [name, l] of this.#listeners) {
      deferredStarts.delete(l);
      if (!this.#taken.has(name)) l.fd.close();
    }
    try {
      for (const start of this.#starts.splice(0)) {
        try {
          await start();
        } catch (e) {
          // accepting was resumed before the probe; a probe answered by a sibling worker is no failure
          if (!(e instanceof UnixAncillaryError && /post-commit self-check .* failed: .* never reached this server/.test(e.message))) throw e;
        }
      }
    } catch (e) {
      this.#chan.send({ t: "failed", error: (e as Error).message });
      throw e;
    }
    this.#chan.send({ t: "ready", pid: process.pid });
  }

  /** Stop accepting, drain, report, exit (on the supervisor's drain, or when it went away). */
  async #drain(graceMs: number, windowMs: number): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      this.#opts.onDrain?.();
    } catch {}
    const gates = this.#handles.map((h) => {
      try {
        return new AcceptGate(h.fd());
      } catch {
        return null;
      }
    }).filter((g): g is AcceptGate => g !== null);
    const { at } = await pauseGates(gates);
    this.#chan.send({ t: "stopped", at });
    const reports = await Promise.all(this.#handles.map((h) => drainListener(h.adapter(), { graceMs, windowMs, onConnection: this.#opts.onConnection }).catch(() => null)));
    const ok = reports.filter((r): r is DrainReport => r !== null);
    this.#chan.send({ t: "drained", reports: ok, stats: this.stats() });
    this.#resolveDrained(ok);
    if (this.#opts.exitAfterDrain !== false) {
      this.#chan.close();
      process.exit(0);
    }
  }

  async #loop(): Promise<void> {
    for (;;) {
      let got;
      try {
        got = await this.#chan.recv();
      } catch {
        got = null;
      }
      if (got === null) {
        // The supervisor is gone: nobody will replace us or ask us to go. Leave cleanly.
        await this.#drain(10_000, 1000);
        return;
      }
      const m = got.msg;
      if (m.t === "drain") void this.#drain(Number(m.graceMs ?? 10_000), Number(m.windowMs ?? 1000));
      else if (m.t === "stats") this.#chan.send({ t: "stats", seq: m.seq, ...this.stats() });
    }
  }
}

/** Joins the pool this process was spawned by (reads the hello and the listening sockets from $UA_POOL_FD). */
export async function joinPool(opts: JoinPoolOptions = {}): Promise<PoolWorker> {
  const raw = process.env[POOL_FD_ENV];
  if (raw === undefined || !/^\d+$/.test(raw)) throw new UnixAncillaryError("ERR_UA_PROTOCOL", `joinPool: $${POOL_FD_ENV} is not set: this process was not started by a pool supervisor`);
  delete process.env[POOL_FD_ENV]; // children of the app must not think they are workers
  const n = Number(raw);
  if (!sys.isOpen(n)) throw new UnixAncillaryError("ERR_UA_PROTOCOL", `joinPool: $${POOL_FD_ENV}=${n} but fd ${n} is not open`);
  sys.setCloexec(n); // inherited without FD_CLOEXEC: the app's own children must not get the channel
  const chan = new PoolChannel(UnixSeqpacket.fromFd(OwnedFd.from(n)), { idleMs: 20, ref: false });
  const got = await chan.recv({ deadline: performance.now() + (opts.timeoutMs ?? 30_000), acceptFds: true });
  if (got === null || got.msg.t !== "hello") {
    got?.fds.forEach((f) => f.close());
    chan.close();
    throw new UnixAncillaryError("ERR_UA_PROTOCOL", "joinPool: the supervisor did not send its hello");
  }
  const names = got.msg.listeners as Array<{ name: string; family: ReceivedListener["family"]; address: string; port: number; type: ReceivedListener["type"] }>;
  if (!Array.isArray(names) || names.length !== got.fds.length) {
    got.fds.forEach((f) => f.close());
    chan.close();
    throw new UnixAncillaryError("ERR_UA_PROTOCOL", `joinPool: hello lists ${Array.isArray(names) ? names.length : "no"} listeners but carried ${got.fds.length} fds`);
  }
  const listeners = new Map<string, ReceivedListener>();
  names.forEach((n, i) => listeners.set(n.name, { name: n.name, fd: got.fds[i]!, family: n.family, address: n.address, port: n.port, type: n.type }));
  return new PoolWorker(chan, got.msg, listeners, opts);
}
