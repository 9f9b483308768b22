/**
 * The pool supervisor: opens the listening sockets once, runs N workers of a script, replaces them
 * one by one (rolling restart), restarts crashed ones with backoff, answers status queries.
 *
 *   const pool = await startPool({ script: "app.ts", workers: 4, listen: [{ port: 8080 }] });
 *   process.on("SIGHUP", () => pool.reload().catch(console.error));   // or handleSignals: true
 *
 * Every worker accepts from the same listening socket (one kernel accept queue), so a worker that
 * stops accepting loses nothing: queued connections go to the others. A rollout for each slot: spawn
 * the new worker, wait for its ready() (it accepts only from then on), then tell the old one to stop
 * accepting and drain (keep-alive-safe drain of the handoff) and wait for it to exit. If the new one
 * fails or times out, it is killed and the rollout stops; the old one keeps serving.
 *
 * Ownership: the listening fds are owned by the pool (closed by close(); sent to workers, never
 * handed away). Each worker's channel socketpair: the child's end is closed here right after the
 * spawn, ours when the worker exits, on every path. The control listener is closed by close().
 */
import { EventEmitter } from "node:events";
import { nodeFs } from "../node-fs.ts";
import { availableParallelism } from "node:os";
import type { Subprocess } from "bun";
import { UnixSeqpacket, UnixSeqpacketListener } from "../socket.ts";
import { OwnedFd } from "../owned-fd.ts";
import { UnixAncillaryError, type UnixAncillaryErrorCode } from "../errors.ts";
import { peerCredentials } from "../credentials.ts";
import * as sys from "../sys.ts";
import { waitReadable, forgetFd } from "../handoff/wait.ts";
import { PoolChannel, type Message } from "./channel.ts";
import { openListeners, openReusePortGroup, type ListenSpec, type PoolListener } from "./listen.ts";
import { POOL_FD_ENV, POOL_WORKER_ENV } from "./worker.ts";
import { spawnSuccessor } from "../handoff/server.ts";
import type { SpawnOptions } from "../handoff/spawn.ts";
import { isHandoffChild, requestHandoff, type Handoff } from "../handoff/client.ts";
import { listenFds, sdNotify, sdNotifyFdStore } from "../systemd.ts";

/** A worker's lifecycle: starting → ready → draining → exited. */
export type WorkerState = "starting" | "ready" | "draining" | "exited";

/** One worker in a PoolStatus: pid, slot, generation, state, restarts, accepted connections, requests. */
export interface WorkerInfo {
  id: number;
  slot: number;
  pid: number;
  generation: number;
  state: WorkerState;
  /** Restarts of this slot (crashes replaced) so far. */
  restarts: number;
  /** Connections / requests this worker served (last known; fresh with statusAsync()). */
  accepted: number;
  requests: number;
  startedAt: number;
}

/** A snapshot of the pool (status(), statusAsync(), the control socket's status query). */
export interface PoolStatus {
  pid: number;
  generation: number;
  workers: WorkerInfo[];
  /** Slots given up after a crash loop (see `crash-loop` events). */
  failedSlots: number[];
  reloading: boolean;
  listeners: Array<{ name: string; family: string; address: string; port: number }>;
}

/** Options of startPool: the script, worker count, listeners, rollout and crash-loop limits. */
export interface PoolOptions {
  /** The worker's command after `process.execPath` (e.g. "app.ts" or ["app.ts", "--flag"]). */
  script: string | string[];
  /** Number of workers (default: available parallelism). */
  workers?: number;
  /** Listening sockets, opened once here (or given as fds: systemd, a handoff). */
  listen: ListenSpec[];
  env?: Record<string, string | undefined>;
  cwd?: string;
  stdout?: "inherit" | "ignore";
  stderr?: "inherit" | "ignore";
  /** Spawn -> ready() limit per worker (default 30 000 ms). */
  readyTimeoutMs?: number;
  /** Old workers' drain: hard limit and Connection: close window (defaults 10 000 / 1000 ms). */
  drain?: { graceMs?: number; windowMs?: number };
  /** Workers replaced at the same time during a rollout (default 1). */
  parallelism?: number;
  /** Crash restart delay: initialMs * 2^(recent crashes - 1), at most maxMs (defaults 100 / 10 000). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** More than maxRestarts crashes of one slot within windowMs: the slot is given up (defaults 5 / 60 000). */
  crashLoop?: { maxRestarts?: number; windowMs?: number };
  /** Serve status/reload queries on this Unix socket path (mode 0600). */
  controlPath?: string;
  /** SIGHUP -> reload(), SIGUSR2 -> upgrade(upgradeCommand), SIGTERM/SIGINT -> close() and exit (default false). */
  handleSignals?: boolean;
  /**
   * Where the listening sockets come from: "auto" (default) takes them from a predecessor supervisor
   * (handoff, $UA_HANDOFF_FD) or from systemd ($LISTEN_FDS, matched by name; unnamed fds in order),
   * else opens `listen`. "open" always opens `listen`.
   */
  inherit?: "auto" | "open";
  /** Under systemd ($NOTIFY_SOCKET): store the listeners in the fd store, send MAINPID + READY=1 when started (default true). */
  systemd?: boolean;
  /**
   * How connections reach workers. "shared" (default): one listening socket, one accept queue for
   * all workers (whichever worker is awake accepts; bursts can land on one worker). "reuseport"
   * (Linux, TCP listeners opened here only): one SO_REUSEPORT socket per slot, held open by the
   * supervisor, so the kernel spreads connections evenly like N reusePort processes, while a
   * replaced worker's queue is taken over by its successor (nothing reset). A slot given up after a
   * crash loop has its socket closed (connections queued on it are reset; new ones go elsewhere).
   * No supervisor self-upgrade in this mode.
   */
  balance?: "shared" | "reuseport";
  /** Command of the successor supervisor for SIGUSR2 / upgrade() (default: the same argv as this one). */
  upgradeCommand?: string[];
}

/**
 * A failed rollout, a crash loop, an unsupported combination: a UnixAncillaryError (stable `code`,
 * `kind`) that also names the worker `slot` it concerns (null when it concerns the pool).
 */
export class PoolError extends UnixAncillaryError {
  override name = "PoolError";
  declare readonly code: Extract<UnixAncillaryErrorCode, "ERR_UA_CRASH_LOOP" | "ERR_UA_WORKER_FAILED" | "ERR_UA_BUSY" | "ERR_UA_CLOSED" | "ERR_UA_UNSUPPORTED">;
  readonly slot: number | null;
  constructor(code: PoolError["code"], message: string, slot: number | null = null, options?: { cause?: unknown }) {
    super(code, message, options);
    this.slot = slot;
  }
}

/** What reload() resolves with. */
export interface ReloadReport {
  replaced: number;
  /** Milliseconds from the call to the last old worker's exit. */
  elapsedMs: number;
}

class Worker {
  state: WorkerState = "starting";
  pid = 0;
  accepted = 0;
  requests = 0;
  readonly startedAt = Date.now();
  retiring = false;
  child!: Subprocess;
  readonly exited: Promise<void>;
  #resolveExited!: () => void;
  readyWaiter: { resolve: () => void; reject: (e: Error) => void } | null = null;
  stoppedWaiter: (() => void) | null = null;
  statsWaiters = new Map<number, (m: Message) => void>();
  constructor(
    readonly id: number,
    readonly slot: number,
    readonly generation: number,
    readonly chan: PoolChannel,
  ) {
    this.exited = new Promise((r) => (this.#resolveExited = r));
  }
  markExited(): void {
    this.state = "exited";
    this.#resolveExited();
  }
}

interface Slot {
  index: number;
  current: Worker | null;
  restarts: number;
  crashes: number[];
  failed: boolean;
  timer: ReturnType<typeof setTimeout> | null;
}


/**
 * A running pool (what startPool resolves with): N workers of your script on shared listening
 * sockets; reload() rolls them, upgrade() replaces this supervisor, close() drains and stops all.
 *
 * Ownership: the pool owns the listening sockets (closed by close()) and every worker's control
 * channel (closed when that worker exits); fds you passed as `{ fd }` were duplicated and stay yours.
 */
export class Pool extends EventEmitter {
  readonly sockets: readonly PoolListener[];
  readonly #opts: PoolOptions;
  readonly #cmd: string[];
  readonly #slots: Slot[];
  readonly #workers = new Set<Worker>();
  #nextId = 1;
  #generation = 1;
  #reloading = false;
  #closed = false;
  #control: UnixSeqpacketListener | null = null;
  #statsSeq = 1;
  #signalHandlers: Array<[NodeJS.Signals, () => void]> = [];
  /** balance "reuseport": per slot, one socket per listener (same order as `sockets`); null after a crash loop. */
  readonly #slotSockets: Array<OwnedFd[] | null> | null = null;

  /** @internal use startPool() */
  constructor(opts: PoolOptions, listeners: PoolListener[]) {
    super();
    this.#opts = opts;
    this.sockets = listeners;
    this.#cmd = [process.execPath, ...(Array.isArray(opts.script) ? opts.script : [opts.script])];
    const n = opts.workers ?? availableParallelism();
    if (!Number.isInteger(n) || n < 1 || n > 1024) throw rangeError("workers", n, "an integer 1-1024");
    this.#slots = Array.from({ length: n }, (_, index) => ({ index, current: null, restarts: 0, crashes: [], failed: false, timer: null }));
    if (opts.balance === "reuseport") {
      // slot 0 uses the sockets opened by startPool; the others join their groups
      this.#slotSockets = [listeners.map((l) => l.fd)];
      try {
        for (let i = 1; i < n; i++) this.#slotSockets.push(this.#openSlot());
      } catch (e) {
        for (const fds of this.#slotSockets.slice(1)) for (const f of fds ?? []) f.close();
        throw e;
      }
    }
  }

  /** balance "reuseport": a new socket in each listener's group. */
  #openSlot(): OwnedFd[] {
    const out: OwnedFd[] = [];
    try {
      for (const l of this.sockets) out.push(openReusePortGroup(l.info.address, l.info.port, 1)[0]!);
      return out;
    } catch (e) {
      for (const f of out) f.close();
      throw e;
    }
  }

  /** The listening fds a worker of `slot` serves. */
  #fdsFor(slot: Slot): OwnedFd[] {
    if (!this.#slotSockets) return this.sockets.map((l) => l.fd);
    let fds = this.#slotSockets[slot.index];
    if (!fds) fds = this.#slotSockets[slot.index] = this.#openSlot(); // re-opened after a crash loop
    return fds;
  }

  get generation(): number {
    return this.#generation;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Starts every slot; resolves when all are ready, rejects (after closing the pool) if one fails. */
  async start(): Promise<void> {
    try {
      await Promise.all(this.#slots.map(async (slot) => {
        const w = await this.#spawn(slot);
        slot.current = w;
      }));
    } catch (e) {
      await this.close();
      throw e;
    }
    if (this.#opts.controlPath) this.#serveControl(this.#opts.controlPath);
    if (this.#opts.handleSignals) this.#installSignals();
  }

  /** Spawns a worker for `slot` and waits for its ready(); on failure it is killed and the error thrown. */
  async #spawn(slot: Slot): Promise<Worker> {
    if (this.#closed) throw new PoolError("ERR_UA_CLOSED", "pool: closed");
    const fds = this.#fdsFor(slot); // may open the slot's socket (reuseport): before anything else exists
    const [ours, theirs] = UnixSeqpacket.pair();
    const chan = new PoolChannel(ours, { idleMs: 20, ref: false });
    const w = new Worker(this.#nextId++, slot.index, this.#generation, chan);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...this.#opts.env })) if (v !== undefined) env[k] = v;
    env[POOL_FD_ENV] = "3";
    env[POOL_WORKER_ENV] = String(w.id);
    try {
      w.child = Bun.spawn(this.#cmd, {
        cwd: this.#opts.cwd,
        env,
        stdio: ["ignore", this.#opts.stdout ?? "inherit", this.#opts.stderr ?? "inherit", theirs.fd],
        onExit: () => this.#onExit(w),
      });
    } catch (e) {
      chan.close();
      theirs.close();
      throw new PoolError("ERR_UA_WORKER_FAILED", `pool: could not spawn worker for slot ${slot.index}: ${(e as Error).message}`, slot.index, { cause: e });
    }
    theirs.close();
    w.pid = w.child.pid;
    this.#workers.add(w);
    this.emit("worker-spawn", this.#info(w));
    const ready = new Promise<void>((resolve, reject) => (w.readyWaiter = { resolve, reject }));
    chan.send(
      { t: "hello", id: w.id, slot: slot.index, generation: w.generation, listeners: this.sockets.map((l) => ({ name: l.name, ...l.info })) },
      fds,
    );
    void this.#readLoop(w);
    const timeoutMs = this.#opts.readyTimeoutMs ?? 30_000;
    let timer: ReturnType<typeof setTimeout> | null = null;
    try {
      await Promise.race([
        ready,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new PoolError("ERR_UA_WORKER_FAILED", `pool: worker ${w.id} (pid ${w.pid}) did not become ready within ${timeoutMs} ms`, slot.index)), timeoutMs);
        }),
      ]);
    } catch (e) {
      w.retiring = true;
      w.child.kill("SIGKILL");
      await w.exited;
      throw e;
    } finally {
      if (timer) clearTimeout(timer);
      w.readyWaiter = null;
    }
    w.state = "ready";
    this.emit("worker-ready", this.#info(w));
    return w;
  }

  async #readLoop(w: Worker): Promise<void> {
    for (;;) {
      let got;
      try {
        got = await w.chan.recv();
      } catch (e) {
        this.emit("warning", e);
        continue;
      }
      if (got === null) return;
      this.#dispatch(w, got.msg);
    }
  }

  /** One message from a worker. */
  #dispatch(w: Worker, m: Message): void {
    if (m.t === "ready") w.readyWaiter?.resolve();
    else if (m.t === "failed") w.readyWaiter?.reject(new PoolError("ERR_UA_WORKER_FAILED", `pool: worker ${w.id} (pid ${w.pid}) failed to start: ${String(m.error)}`, w.slot));
    else if (m.t === "stopped") w.stoppedWaiter?.();
    else if (m.t === "stats" || m.t === "drained") {
      const s = (m.t === "drained" ? m.stats : m) as { accepted?: number; requests?: number } | undefined;
      if (s && typeof s.accepted === "number") w.accepted = s.accepted;
      if (s && typeof s.requests === "number") w.requests = s.requests;
      if (m.t === "stats") w.statsWaiters.get(Number(m.seq))?.(m);
      else this.emit("worker-drained", { ...this.#info(w), reports: m.reports });
    }
  }

  #onExit(w: Worker): void {
    const code = w.child.exitCode, signal = w.child.signalCode;
    // What the worker sent right before it exited (its "drained" report, last stats) may still be
    // queued: the exit can overtake the read loop's next poll.
    for (const m of w.chan.takeQueued()) this.#dispatch(w, m);
    w.chan.close();
    this.#workers.delete(w);
    const wasReady = w.state === "ready";
    w.markExited();
    w.readyWaiter?.reject(new PoolError("ERR_UA_WORKER_FAILED", `pool: worker ${w.id} (pid ${w.pid}) exited before ready (${signal ? `signal ${signal}` : `code ${code}`})`, w.slot));
    w.stoppedWaiter?.();
    this.emit("worker-exit", { ...this.#info(w), code, signal, expected: w.retiring });
    if (w.retiring || this.#closed) return;
    const slot = this.#slots[w.slot]!;
    if (slot.current !== w || !wasReady) return;
    slot.current = null;
    this.#crashed(slot, `worker ${w.id} (pid ${w.pid}) ${signal ? `was killed by ${signal}` : `exited with code ${code}`}`);
  }

  /** A slot's worker died (or a replacement failed): restart with backoff, or give up on a crash loop. */
  #crashed(slot: Slot, why: string): void {
    if (this.#closed || slot.failed) return;
    const now = Date.now();
    const windowMs = this.#opts.crashLoop?.windowMs ?? 60_000;
    const max = this.#opts.crashLoop?.maxRestarts ?? 5;
    slot.crashes = slot.crashes.filter((t) => now - t < windowMs);
    slot.crashes.push(now);
    if (slot.crashes.length > max) {
      slot.failed = true;
      const err = new PoolError("ERR_UA_CRASH_LOOP", `pool: slot ${slot.index} crashed ${slot.crashes.length} times within ${windowMs} ms (last: ${why}); not restarting it until the next reload. The other workers keep serving.`, slot.index);
      const fds = this.#slotSockets?.[slot.index];
      if (fds) {
        // nobody accepts from this slot's queue any more: leave the group so new connections go elsewhere
        for (const f of fds) f.close();
        this.#slotSockets![slot.index] = null;
      }
      this.emit("crash-loop", err);
      return;
    }
    const initial = this.#opts.backoff?.initialMs ?? 100;
    const maxMs = this.#opts.backoff?.maxMs ?? 10_000;
    const delay = Math.min(maxMs, initial * 2 ** (slot.crashes.length - 1));
    this.emit("worker-crash", { slot: slot.index, reason: why, restartInMs: delay });
    slot.timer = setTimeout(() => {
      slot.timer = null;
      if (this.#closed || slot.current) return;
      slot.restarts++;
      this.#spawn(slot).then(
        (w) => {
          if (this.#closed) return this.#retire(w);
          slot.current = w;
        },
        (e: Error) => this.#crashed(slot, e.message),
      );
    }, delay);
  }

  /** Tells `w` to stop accepting and drain; resolves when it stopped accepting, `exited` when gone. */
  /** Stops a worker that never became ready: nothing to drain. */
  #killStarting(w: Worker): void {
    w.retiring = true;
    w.child.kill("SIGKILL");
  }

  async #retire(w: Worker): Promise<void> {
    if (w.state === "exited") return;
    w.retiring = true;
    w.state = "draining";
    const stopped = new Promise<void>((r) => (w.stoppedWaiter = r));
    const graceMs = this.#opts.drain?.graceMs ?? 10_000;
    if (!w.chan.send({ t: "drain", graceMs, windowMs: this.#opts.drain?.windowMs ?? 1000 })) {
      w.child.kill("SIGKILL");
      return;
    }
    // Backstop: a worker that ignores the drain past graceMs (+ slack) is killed.
    const t = setTimeout(() => w.child.kill("SIGKILL"), graceMs + 5000);
    void w.exited.then(() => clearTimeout(t));
    await stopped;
    this.emit("worker-retired", this.#info(w));
  }

  /**
   * Rolling restart: replace every worker, `parallelism` at a time. Resolves when every old worker
   * has exited. Rejects (ERR_UA_WORKER_FAILED) if a new worker fails to become ready: that one is
   * killed, the rollout stops, the remaining old workers keep serving. ERR_UA_BUSY while another
   * rollout runs.
   */
  async reload(): Promise<ReloadReport> {
    if (this.#closed) throw new PoolError("ERR_UA_CLOSED", "pool: closed");
    if (this.#reloading) throw new PoolError("ERR_UA_BUSY", "pool: a rolling restart is already running; wait for it (one at a time)");
    this.#reloading = true;
    const started = performance.now();
    this.#generation++;
    this.emit("reload-start", { generation: this.#generation });
    const exits: Promise<void>[] = [];
    let replaced = 0;
    try {
      const par = Math.max(1, Math.min(this.#slots.length, this.#opts.parallelism ?? 1));
      for (let i = 0; i < this.#slots.length; i += par) {
        await Promise.all(this.#slots.slice(i, i + par).map(async (slot) => {
          const fresh = await this.#spawn(slot);
          if (slot.timer) {
            clearTimeout(slot.timer);
            slot.timer = null;
          }
          const old = slot.current;
          slot.current = fresh;
          slot.failed = false;
          slot.crashes = [];
          replaced++;
          if (old) {
            exits.push(old.exited);
            await this.#retire(old);
          }
        }));
      }
      await Promise.all(exits);
      const report = { replaced, elapsedMs: performance.now() - started };
      this.emit("reload-done", { generation: this.#generation, ...report });
      return report;
    } catch (e) {
      await Promise.all(exits);
      this.emit("reload-failed", e);
      throw e;
    } finally {
      this.#reloading = false;
    }
  }

  /**
   * Supervisor self-upgrade: spawn `cmd` (a new supervisor; default this process's argv) with the
   * listening sockets through the handoff (its fd 3). The new supervisor starts its own workers and
   * says ready once they all serve; then this pool retires its workers (stop accepting + drain, in
   * parallel) and closes. Both generations accept from the same queue meanwhile, so nothing is lost.
   * If the successor fails, it is killed and this pool keeps serving (the error is thrown).
   * Under systemd the successor sends MAINPID= and READY=1 itself. Resolves with the successor's pid;
   * the caller then exits.
   */
  async upgrade(cmd: string[] = this.#opts.upgradeCommand ?? [process.execPath, ...process.argv.slice(1)], opts: SpawnOptions = {}): Promise<{ pid: number; latencyMs: number }> {
    if (this.#closed) throw new PoolError("ERR_UA_CLOSED", "pool: closed");
    if (this.#slotSockets) throw new PoolError("ERR_UA_UNSUPPORTED", 'pool: supervisor self-upgrade is not available with balance: "reuseport" (use "shared")');
    if (this.#reloading) throw new PoolError("ERR_UA_BUSY", "pool: a rolling restart or upgrade is running; wait for it (one at a time)");
    this.#reloading = true;
    try {
      this.emit("upgrade-start", { cmd });
      const listeners = Object.fromEntries(this.sockets.map((l) => [l.name, l.fd]));
      const r = await spawnSuccessor(cmd, { listeners, timeoutMs: this.#opts.readyTimeoutMs ?? 30_000, ...opts });
      if (!r.ok) {
        const e = new PoolError("ERR_UA_WORKER_FAILED", `pool: the successor supervisor failed: ${r.error.message}`, null, { cause: r.error });
        this.emit("upgrade-failed", e);
        throw e;
      }
      r.server.close();
      this.emit("upgrade-done", { pid: r.pid, latencyMs: r.latencyMs });
      await this.close();
      return { pid: r.pid, latencyMs: r.latencyMs };
    } finally {
      this.#reloading = false;
    }
  }

  #info(w: Worker): WorkerInfo {
    return { id: w.id, slot: w.slot, pid: w.pid, generation: w.generation, state: w.state, restarts: this.#slots[w.slot]?.restarts ?? 0, accepted: w.accepted, requests: w.requests, startedAt: w.startedAt };
  }

  /** Current state (counts as last reported; see statusAsync()). */
  status(): PoolStatus {
    return {
      pid: process.pid,
      generation: this.#generation,
      workers: [...this.#workers].map((w) => this.#info(w)).sort((a, b) => a.slot - b.slot || a.id - b.id),
      failedSlots: this.#slots.filter((s) => s.failed).map((s) => s.index),
      reloading: this.#reloading,
      listeners: this.sockets.map((l) => ({ name: l.name, family: l.info.family, address: l.info.address, port: l.info.port })),
    };
  }

  /** status() after asking every live worker for fresh counts (each answer waited for at most timeoutMs). */
  async statusAsync(timeoutMs = 1000): Promise<PoolStatus> {
    await Promise.all([...this.#workers].map((w) => {
      if (w.state === "exited") return;
      const seq = this.#statsSeq++;
      return new Promise<void>((resolve) => {
        const t = setTimeout(() => done(), timeoutMs);
        const done = () => {
          clearTimeout(t);
          w.statsWaiters.delete(seq);
          resolve();
        };
        w.statsWaiters.set(seq, done);
        if (!w.chan.send({ t: "stats", seq })) done();
        void w.exited.then(done);
      });
    }));
    return this.status();
  }

  /** Pids of live workers. */
  pids(): number[] {
    return [...this.#workers].map((w) => w.pid);
  }

  /**
   * Drains every worker (in parallel) and closes the listening sockets and the control socket.
   * `keepListeners`: leave the listening fds open (a successor supervisor has them).
   */
  async close(opts: { keepListeners?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const [sig, h] of this.#signalHandlers) process.off(sig, h);
    this.#signalHandlers = [];
    for (const s of this.#slots) {
      if (s.timer) {
        clearTimeout(s.timer);
        s.timer = null;
      }
    }
    const all = [...this.#workers];
    await Promise.all(all.map((w) => (w.state === "starting" ? this.#killStarting(w) : this.#retire(w))));
    await Promise.all(all.map((w) => w.exited));
    if (this.#control) {
      forgetFd(this.#control.fd);
      this.#control.close();
      this.#control = null;
    }
    if (!opts.keepListeners) {
      for (const l of this.sockets) l.fd.close();
      for (const fds of this.#slotSockets ?? []) for (const f of fds ?? []) f.close();
    }
    this.emit("closed");
  }

  #installSignals(): void {
    const hup = () => void this.reload().catch(() => {}); // reported as a reload-failed event
    const usr2 = () => void this.upgrade().then(() => process.exit(0), () => {}); // upgrade-failed event
    const term = () => void this.close().then(() => process.exit(0));
    for (const [sig, h] of [["SIGHUP", hup], ["SIGUSR2", usr2], ["SIGTERM", term], ["SIGINT", term]] as Array<[NodeJS.Signals, () => void]>) {
      process.on(sig, h);
      this.#signalHandlers.push([sig, h]);
    }
  }

  // ---- control socket: one JSON request per connection ({ cmd: "status" | "reload" }) --------------

  #serveControl(path: string): void {
    const tmp = `${path}.${process.pid}.tmp`;
    const l = UnixSeqpacketListener.bindSync(tmp, { mode: 0o600, unlinkOnClose: false });
    // rename over a predecessor's socket: atomic, a client always finds a live supervisor
    nodeFs().renameSync(tmp, path);
    this.#control = l;
    void (async () => {
      while (!this.#closed && !l.closed) {
        try {
          await waitReadable(l.fd, { idleMs: 50, ref: false });
        } catch {
          return;
        }
        if (this.#closed || l.closed) return;
        let conn: UnixSeqpacket;
        try {
          conn = l.acceptSync();
        } catch {
          continue;
        }
        void this.#answer(conn);
      }
    })();
  }

  async #answer(conn: UnixSeqpacket): Promise<void> {
    const chan = new PoolChannel(conn, { idleMs: 5, ref: false });
    try {
      const cred = peerCredentials(conn.fd);
      if (cred.uid !== sys.geteuid() && sys.geteuid() !== 0) {
        chan.send({ t: "error", code: "ERR_UA_PEER_REJECTED", message: `uid ${cred.uid} may not control this pool` });
        return;
      }
      const got = await chan.recv({ deadline: performance.now() + 5000 });
      if (!got) return;
      const cmd = got.msg.t;
      if (cmd === "status") chan.send({ t: "status", status: await this.statusAsync() });
      else if (cmd === "reload") {
        try {
          chan.send({ t: "reloaded", report: await this.reload() });
        } catch (e) {
          chan.send({ t: "error", code: (e as PoolError).code ?? "ERR_UA_WORKER_FAILED", message: (e as Error).message });
        }
      } else chan.send({ t: "error", code: "ERR_INVALID_ARG_VALUE", message: `unknown command ${JSON.stringify(cmd)} (status, reload)` });
    } catch (e) {
      chan.send({ t: "error", code: (e as { code?: string }).code ?? "ERR_UA_PROTOCOL", message: (e as Error).message });
    } finally {
      chan.close();
    }
  }
}

function rangeError(name: string, v: unknown, want: string): RangeError {
  const e = new RangeError(`pool: "${name}" must be ${want} (got ${String(v)})`) as RangeError & { code: string };
  e.code = "ERR_OUT_OF_RANGE";
  return e;
}

/**
 * Opens (or inherits: see PoolOptions.inherit) the listeners, starts the workers, resolves when all
 * are ready. Started by a predecessor supervisor (upgrade()), it commits the handoff only then.
 */
export async function startPool(opts: PoolOptions): Promise<Pool> {
  if (!opts || (typeof opts.script !== "string" && !Array.isArray(opts.script))) throw new TypeError("startPool: `script` must be the worker's script path (or argv array)");
  const inherit = opts.inherit ?? "auto";
  let handoff: Handoff | null = null;
  let specs: ListenSpec[] = opts.listen;
  const inherited: OwnedFd[] = [];
  if (inherit === "auto" && isHandoffChild()) {
    handoff = await requestHandoff({ timeoutMs: opts.readyTimeoutMs ?? 30_000 });
    specs = [...handoff.listeners.keys()].map((name) => {
      const l = handoff!.take(name);
      inherited.push(l.fd);
      return { name, fd: l.fd };
    });
  } else if (inherit === "auto") {
    const passed = listenFds();
    const fds = passed.filter((f) => f.socket?.listening && f.socket.type === "stream");
    // systemd may pass the same socket twice (socket unit + fd store) and other fds: close what we do not use
    const unused = () => {
      for (const f of passed) if (!inherited.includes(f.fd)) f.fd.close();
    };
    if (fds.length === 0) unused();
    else {
      const wanted = opts.listen.map((spec, i) => spec.name ?? (i === 0 ? "http" : `listener${i}`));
      const byName = new Map(fds.map((f) => [f.name, f]));
      const unnamed = fds.filter((f) => !wanted.includes(f.name));
      specs = wanted.map((name) => {
        const f = byName.get(name) ?? unnamed.shift();
        if (!f) {
          for (const x of passed) x.fd.close();
          throw new PoolError("ERR_UA_WORKER_FAILED", `startPool: systemd passed no socket for listener "${name}" (got: ${fds.map((x) => x.name).join(", ")})`);
        }
        inherited.push(f.fd);
        byName.delete(f.name);
        return { name, fd: f.fd };
      });
      unused();
    }
  }
  let listeners: PoolListener[];
  if (opts.balance === "reuseport") {
    if (inherited.length > 0) {
      for (const fd of inherited) fd.close();
      handoff?.abort('balance "reuseport" cannot take inherited sockets');
      throw new PoolError("ERR_UA_UNSUPPORTED", 'startPool: balance "reuseport" opens its own sockets; it cannot take inherited ones (systemd, handoff): use balance "shared"');
    }
    specs = specs.map((spec, i) => {
      if (!("port" in spec)) throw Object.assign(new TypeError('startPool: balance "reuseport" needs TCP listeners ({ port, host })'), { code: "ERR_INVALID_ARG_VALUE" });
      const fd = openReusePortGroup(spec.host ?? "127.0.0.1", spec.port, 1)[0]!;
      inherited.push(fd);
      return { name: spec.name ?? (i === 0 ? "http" : `listener${i}`), fd };
    });
  }
  try {
    listeners = openListeners(specs);
  } finally {
    for (const fd of inherited) fd.close(); // openListeners made its own duplicates
  }
  let pool: Pool;
  try {
    pool = new Pool(opts, listeners);
  } catch (e) {
    for (const l of listeners) l.fd.close();
    handoff?.abort("pool configuration failed");
    throw e;
  }
  try {
    await pool.start();
  } catch (e) {
    handoff?.abort((e as Error).message);
    throw e;
  }
  if (handoff) {
    try {
      await handoff.ready();
    } catch (e) {
      // the predecessor carries on; this pool must not keep serving beside it
      await pool.close();
      throw e;
    }
  }
  if ((opts.systemd ?? true) && process.env.NOTIFY_SOCKET) {
    for (const l of listeners) sdNotifyFdStore(l.name, [l.fd], { poll: false });
    sdNotify({ MAINPID: process.pid, READY: 1, STATUS: `${pool.status().workers.length} workers serving` });
  }
  return pool;
}

/** Asks a running pool (its controlPath) for status or a reload. */
export async function poolControl(path: string, cmd: "status" | "reload", timeoutMs = 60_000): Promise<Message> {
  const sock = UnixSeqpacket.connectSync(path);
  const chan = new PoolChannel(sock, { idleMs: 5 });
  try {
    chan.send({ t: cmd });
    const got = await chan.recv({ deadline: performance.now() + timeoutMs });
    if (!got) throw new UnixAncillaryError("ERR_UA_PROTOCOL", `pool control ${path}: the supervisor closed the connection without answering`);
    if (got.msg.t === "error") {
      const e = new Error(String(got.msg.message)) as Error & { code: string };
      e.code = String(got.msg.code);
      throw e;
    }
    return got.msg;
  } finally {
    chan.close();
  }
}

export { OwnedFd };
