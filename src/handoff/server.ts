/**
 * The old side: offer named listeners to one successor at a time.
 *
 *   const ho = serveHandoff({ http: server }, { path: "/run/myapp/handoff.sock" });
 *   const up = await ho.upgraded;          // a successor adopted the sockets and said "ready"
 *   await ho.drain({ graceMs: 10_000, hardMs: 30_000, exit: true });
 *
 * Guarantees: the old side keeps accepting until the successor said ready (adopted, warm, not yet
 * accepting). It then stops accepting (AcceptGate: its listening fds leave Bun's epoll set; nothing is
 * closed, the kernel queues new connections for the successor), sends done, and commits only when the
 * successor answers serving (it accepts now and passed its self-check). Any failure before the commit
 * (peer death at any step, timeout — one deadline for the whole attempt, onUpgrade included — bad
 * frame, refusal, a successor that did not adopt what was offered) re-arms the gates and leaves the old
 * side serving as before (no fd leaked) and ready for the next attempt. One upgrade at a time: a
 * second upgrader gets an abort frame (ERR_UA_BUSY).
 *
 * Peer check: SO_PEERCRED against peerPolicy; where SO_PEERPIDFD works (Linux >= 6.5) the upgrader's
 * pidfd is also taken at accept time and the upgrader must still be alive, with the pid the policy saw,
 * after the policy and right before the offer (policy.ts): a pid that exited and was reused cannot pass.
 *
 * Ownership: the offered listeners stay the caller's (their fds are sent, never closed here); the
 * control listener and each upgrader connection are owned here and closed on every path; fds an
 * upgrader sends (it never should) are closed by Channel.recv. The upgrader's pidfd (UpgradePeer.pidfd)
 * is owned here and closed when the attempt ends, on every path (commit, refusal, error, a throwing
 * or timed-out onUpgrade), after onFailure returns; onUpgrade/onFailure only borrow it.
 */
import { nodeFs } from "../node-fs.ts";
import { dirname, basename, join } from "node:path";
import { UnixSeqpacket, UnixSeqpacketListener } from "../socket.ts";
import { OwnedFd } from "../owned-fd.ts";
import { peerCredentials, type PeerCredentials } from "../credentials.ts";
import { UnixAncillaryError, SystemError, invalidArgValue } from "../errors.ts";
import * as sys from "../sys.ts";
import { Channel, PeerClosedError } from "./channel.ts";
import { FrameType, MAX_FDS, protocolError, validName, type OfferedListener } from "./protocol.ts";
import { drainSource, resolveSource, type HandoffSource } from "./sources.ts";
import { markDraining, trackNetServer, isWrappedBunServe } from "./drain.ts";
import { isHttpServer, isNetServer } from "./node-modules.ts";
import { AcceptGate, pauseGates, resumeGates } from "./gate.ts";
import { intOption, oneOf, MAX_TIMEOUT_MS } from "./validate.ts";
import type { DrainReport, DrainListenerOptions } from "./drain.ts";
let warnedUnwrapped = false;
import { forgetFd, waitReadable } from "./wait.ts";
import { checkPeer, pinPeer, verifyPeer, type PeerPolicy } from "./policy.ts";
import { spawnWith, type SpawnOptions, type SpawnResult } from "./spawn.ts";
import type { UpgradeResult } from "./result.ts";

/** Options of serveHandoff (all optional). */
export interface ServeHandoffOptions {
  /** Control socket path. Its directory is created 0700 if missing and must not be group/other accessible; the socket is 0600. */
  path?: string;
  /** A connected SOCK_SEQPACKET channel instead of a path (e.g. an inherited socketpair end). One upgrade attempt only. */
  socket?: UnixSeqpacket | OwnedFd;
  /** One deadline for a whole attempt, from accepting the upgrader to its serving frame, onUpgrade included (default 30 000 ms). After it the old side carries on. */
  timeoutMs?: number;
  /** Which offered listeners the successor must have adopted for the commit: "all" (default) or "any" (at least one). Otherwise the attempt aborts and the old side keeps serving. */
  requireAdopted?: "all" | "any";
  /** Who may take the listeners (default "same-uid": the peer's SO_PEERCRED uid equals our euid). */
  peerPolicy?: PeerPolicy;
  /** Called after the peer is authenticated and said hello; return false (or throw) to refuse. */
  onUpgrade?: (peer: UpgradePeer) => boolean | void | Promise<boolean | void>;
  /** Called for every failed or refused attempt (the old side carries on). */
  onFailure?: (error: Error, peer: UpgradePeer | null) => void;
  /** Accept-loop idle poll interval in ms when the reactor is not used (default 10). */
  idlePollMs?: number;
}

/** The process asking to take over, as the kernel identifies it (SO_PEERCRED). */
export interface UpgradePeer {
  pid: number | null;
  uid: number;
  gid: number;
  /**
   * The upgrader's pidfd (SO_PEERPIDFD, taken when it was accepted), or null: before Linux 6.5, off
   * Linux, and in spawn mode (the socketpair's SO_PEERPIDFD names this process). Borrowed: valid while
   * onUpgrade runs (until it settles or the attempt's deadline passes) and during onFailure; the
   * server closes it when the attempt ends. Do not close or release it (the check before the offer
   * would then refuse the upgrade); dup() it to keep one.
   */
  pidfd: OwnedFd | null;
}

export type { UpgradeResult } from "./result.ts";

/** Where a HandoffServer is: waiting, mid-attempt, handed over, or closed. */
export type HandoffState = "idle" | "upgrading" | "upgraded" | "closed";

/** Options of HandoffServer.drain(): the drain loop's (docs/handoff.md, "drain") plus the hard limits and exit. */
export interface DrainOptions extends Omit<DrainListenerOptions, "graceMs"> {
  /** Hard limit per server: in-flight requests may finish until then, the rest is cut (default 10 000 ms). */
  graceMs?: number;
  /** Hard limit for the whole drain; at it the process exits if `exit` is set (default graceMs + 5 000). */
  hardMs?: number;
  /** Exit the process when drained (true = code 0, or a number). Default false. */
  exit?: boolean | number;
}

function isDirectory(path: string): boolean {
  try {
    return nodeFs().statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function ensurePrivateDir(dir: string): void {
  try {
    nodeFs().mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  const st = nodeFs().statSync(dir);
  if (!st.isDirectory()) throw new UnixAncillaryError("ERR_UA_PEER_REJECTED", `handoff control directory ${dir} is not a directory`);
  if ((st.mode & 0o077) !== 0) {
    throw new UnixAncillaryError("ERR_UA_PEER_REJECTED", `handoff control directory ${dir} has mode ${(st.mode & 0o777).toString(8)}; it must not be accessible to group/others (chmod 700)`);
  }
  if (st.uid !== sys.geteuid()) throw new UnixAncillaryError("ERR_UA_PEER_REJECTED", `handoff control directory ${dir} is owned by uid ${st.uid}, not by us (${sys.geteuid()})`);
}

/** A default control path: $XDG_RUNTIME_DIR (or /tmp/unix-ancillary-<uid>)/<name>.handoff.sock. */
export function defaultControlPath(name = "app"): string {
  const base = process.env.XDG_RUNTIME_DIR ? join(process.env.XDG_RUNTIME_DIR, "unix-ancillary") : `/tmp/unix-ancillary-${sys.geteuid()}`;
  return join(base, `${name}.handoff.sock`);
}

/**
 * The old side of a handoff (what serveHandoff returns): waits on a control socket for a successor,
 * offers it the listening sockets, and after the commit tells you through `upgraded`; then `drain()`.
 * One attempt at a time (a second upgrader gets ERR_UA_BUSY); a failed attempt leaves it serving.
 *
 * Ownership: the sources you pass stay yours until `drain()` stops them; the fds it sends are dups
 * closed after each attempt; `close()` (or `using`) closes the control socket and removes its file.
 */
export class HandoffServer implements Disposable {
  readonly #sources: Map<string, HandoffSource>;
  readonly #opts: ServeHandoffOptions;
  readonly #timeoutMs: number;
  readonly #requireAdopted: "all" | "any";
  readonly #idlePollMs: number;
  #state: HandoffState = "idle";
  #listener: UnixSeqpacketListener | null = null;
  #fileId: string | null = null;
  #path: string | null = null;
  #resolve!: (r: UpgradeResult) => void;
  #reject!: (e: Error) => void;
  #lastError: Error | null = null;
  #attempts = 0;
  #failures = 0;
  #gates: AcceptGate[] = [];
  #waiters: Array<(r: { ok: true; result: UpgradeResult } | { ok: false; error: Error }) => void> = [];
  /** Resolves when a successor has acknowledged ready (never rejects on failed attempts; rejects only if the server is closed first). */
  readonly upgraded: Promise<UpgradeResult>;

  constructor(listeners: Record<string, HandoffSource>, opts: ServeHandoffOptions = {}) {
    if (listeners === null || typeof listeners !== "object") throw new TypeError("serveHandoff: listeners must be an object { name: server }");
    const entries = Object.entries(listeners);
    if (entries.length === 0) throw new TypeError("serveHandoff: offer at least one listener");
    if (entries.length > MAX_FDS) throw new RangeError(`serveHandoff: at most ${MAX_FDS} listeners`);
    for (const [name, src] of entries) {
      if (!validName(name)) throw new TypeError(`serveHandoff: invalid listener name ${JSON.stringify(name)} (1-255 printable ASCII characters, no ':' or spaces)`);
      resolveSource(name, src); // fail early on something we cannot find
      if (isNetServer(src) && !isHttpServer(src)) trackNetServer(src);
      const s = src as { fetch?: unknown; pendingRequests?: unknown };
      if (typeof s?.fetch === "function" && "pendingRequests" in s && !isWrappedBunServe(s) && !warnedUnwrapped) {
        warnedUnwrapped = true;
        console.warn(`unix-ancillary/handoff: listener "${name}" is a plain Bun.serve server: after the handoff its keep-alive responses cannot carry "Connection: close", so a keep-alive client that sends just as an idle connection is closed can lose that request. Create the server with bunServe() from unix-ancillary/handoff instead.`);
      }
    }
    if (opts === null || typeof opts !== "object") throw new TypeError("serveHandoff: options must be an object");
    if (opts.path !== undefined && opts.socket !== undefined) throw new TypeError("serveHandoff: pass either path or socket, not both");
    this.#timeoutMs = intOption("timeoutMs", opts.timeoutMs, 1, MAX_TIMEOUT_MS, 30_000);
    this.#idlePollMs = intOption("idlePollMs", opts.idlePollMs, 1, 60_000, 10);
    this.#requireAdopted = oneOf("requireAdopted", opts.requireAdopted, ["all", "any"] as const, "all");
    if (opts.onUpgrade !== undefined && typeof opts.onUpgrade !== "function") throw new TypeError("serveHandoff: onUpgrade must be a function");
    if (opts.onFailure !== undefined && typeof opts.onFailure !== "function") throw new TypeError("serveHandoff: onFailure must be a function");
    this.#sources = new Map(entries);
    this.#opts = opts;
    this.upgraded = new Promise((res, rej) => {
      this.#resolve = res;
      this.#reject = rej;
    });
    this.upgraded.catch(() => {}); // closing without an upgrade is not an unhandled error
    const path = opts.path; // each option read once (a getter could answer differently each time)
    const socket = opts.socket;
    if (path !== undefined) {
      this.#bindPath(path);
      void this.#acceptLoop();
    } else if (socket !== undefined) {
      const sock = socket instanceof OwnedFd ? UnixSeqpacket.fromFd(socket) : socket;
      void this.#handle(new Channel(sock)).finally(() => {
        if (this.#state !== "upgraded") this.close();
      });
    }
  }

  get state(): HandoffState {
    return this.#state;
  }
  /** The control socket path, or null. */
  get path(): string | null {
    return this.#path;
  }
  get stats(): { attempts: number; failures: number; lastError: Error | null } {
    return { attempts: this.#attempts, failures: this.#failures, lastError: this.#lastError };
  }
  get listenerNames(): string[] {
    return [...this.#sources.keys()];
  }

  #bindPath(path: string): void {
    // "/tmp" would otherwise be read as socket "tmp" in directory "/" and refused for "/"'s mode.
    if (path.endsWith("/") || isDirectory(path)) {
      throw invalidArgValue("options.path", `is a directory (${JSON.stringify(path)}); it must be the control socket's file path, e.g. ${JSON.stringify(join(path, "myapp.handoff.sock"))} inside a directory only you can access (mode 0700)`);
    }
    const dir = dirname(path);
    ensurePrivateDir(dir);
    // Bind a private temporary name, then rename over `path`: a running predecessor's socket file is
    // replaced atomically, and the predecessor will not unlink ours (it checks the inode).
    const tmp = join(dir, `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2, 8)}`);
    const l = UnixSeqpacketListener.bindSync(tmp, { mode: 0o600, backlog: 8, unlinkOnClose: false });
    try {
      nodeFs().renameSync(tmp, path);
      this.#fileId = sys.fileIdentity(path);
    } catch (e) {
      l.close();
      try {
        nodeFs().unlinkSync(tmp);
      } catch {}
      throw e;
    }
    sys.setNonblocking(l.fd, true);
    this.#listener = l;
    this.#path = path;
  }

  async #acceptLoop(): Promise<void> {
    while (this.#listener && !this.#listener.closed && this.#state !== "upgraded" && this.#state !== "closed") {
      const l = this.#listener;
      try {
        await waitReadable(l.fd, { ref: false, idleMs: this.#idlePollMs });
      } catch {
        return;
      }
      if (l.closed) return;
      let conn: UnixSeqpacket;
      try {
        conn = l.acceptSync();
      } catch (e) {
        if (e instanceof SystemError && (e.code === "EAGAIN" || e.code === "ECONNABORTED")) continue;
        if (l.closed) return;
        this.#fail(e as Error, null);
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const chan = new Channel(conn);
      if (this.#state !== "idle") {
        chan.sendAbort("ERR_UA_BUSY", "another upgrade is in progress (one at a time)");
        chan.close();
        this.#fail(new UnixAncillaryError("ERR_UA_BUSY", "refused a second concurrent upgrader"), null);
        continue;
      }
      void this.#handle(chan);
    }
  }

  #fail(e: Error, peer: UpgradePeer | null): void {
    this.#failures++;
    this.#lastError = e;
    for (const w of this.#waiters.splice(0)) w({ ok: false, error: e });
    try {
      this.#opts.onFailure?.(e, peer);
    } catch {
      // a throwing callback must not disturb the old side
    }
  }

  /** Runs one upgrade conversation. Never throws; on any failure the old side carries on. */
  async #handle(chan: Channel): Promise<{ ok: true; result: UpgradeResult } | { ok: false; error: Error }> {
    if (this.#state !== "idle") {
      const error = new UnixAncillaryError("ERR_UA_BUSY", `cannot start an upgrade while ${this.#state}`);
      chan.sendAbort("ERR_UA_BUSY", "another upgrade is in progress (one at a time)");
      chan.close();
      return { ok: false, error };
    }
    this.#state = "upgrading";
    this.#attempts++;
    const started = performance.now();
    const deadline = started + this.#timeoutMs;
    let peer: UpgradePeer | null = null;
    let pidfd: OwnedFd | null = null;
    let peerAborted = false;
    let gates: AcceptGate[] = [];
    try {
      let cred: PeerCredentials;
      try {
        cred = peerCredentials(chan.sock);
      } catch (e) {
        throw new UnixAncillaryError("ERR_UA_PEER_REJECTED", `cannot read the upgrader's credentials: ${(e as Error).message}`);
      }
      peer = { pid: cred.pid, uid: cred.uid, gid: cred.gid, pidfd: null };
      pidfd = pinPeer(chan.sock, cred, "upgrader");
      peer.pidfd = pidfd;
      checkPeer(this.#opts.peerPolicy, cred, "upgrader");
      // the process the policy judged by its pid is still the one that connected
      verifyPeer(pidfd, cred, "upgrader");

      const hello = await chan.recv(deadline, "the upgrader's hello");
      if (hello.type === FrameType.Abort) {
        peerAborted = true;
        throw new UnixAncillaryError("ERR_UA_ABORTED", `upgrader aborted: ${hello.payload.code}: ${hello.payload.message}`);
      }
      if (hello.type !== FrameType.Hello) throw protocolError(`expected hello, got frame type ${hello.type}`);
      // On a socketpair we created (spawn mode) SO_PEERCRED names us, the creator: the successor is
      // trusted because we spawned it, and its pid can only come from its hello.
      if (cred.pid === process.pid && Number.isInteger(hello.payload.pid)) {
        peer = { ...peer, pid: hello.payload.pid as number };
        if (peer.pid !== process.pid) {
          // ...and the pidfd names us too, not the successor: none then (the liveness check with it
          // would only ever see this process alive).
          pidfd?.close();
          pidfd = null;
          peer.pidfd = null;
        }
      }
      if (this.#opts.onUpgrade) {
        // The callback runs under the attempt's deadline: a slow or never-settling one aborts the
        // attempt and frees the slot (it cannot hold the server in "upgrading" forever).
        const ok = await beforeDeadline(this.#opts.onUpgrade, peer, deadline);
        if (ok === false) throw new UnixAncillaryError("ERR_UA_PEER_REJECTED", "onUpgrade refused the upgrade");
      }
      if (this.#state !== "upgrading") throw new UnixAncillaryError("ERR_UA_ABORTED", "the handoff server was closed");

      const want = hello.payload.want as string[] | undefined;
      const names = [...this.#sources.keys()].filter((n) => !want || want.includes(n));
      if (names.length === 0) throw new UnixAncillaryError("ERR_UA_PEER_REJECTED", `the upgrader wants none of the offered listeners (asked for ${JSON.stringify(want)}; offered: ${[...this.#sources.keys()].join(", ")})`);
      const offered: OfferedListener[] = [];
      const fds: number[] = [];
      for (const name of names) {
        const r = resolveSource(name, this.#sources.get(name)!);
        const { family, address, port, type } = r.info;
        offered.push({ name, family, address, port, type });
        fds.push(r.fd);
      }
      // Last check before any fd leaves: the upgrader is still alive and still has that pid.
      verifyPeer(pidfd, cred, "upgrader");
      gates = fds.map((fd) => new AcceptGate(fd));
      chan.send(FrameType.Offer, { pid: process.pid, listeners: offered, timeoutMs: Math.max(0, Math.round(deadline - performance.now())) }, fds);

      const ready = await chan.recv(deadline, "the upgrader's ready");
      if (ready.type === FrameType.Abort) {
        peerAborted = true;
        throw new UnixAncillaryError("ERR_UA_ABORTED", `upgrader aborted: ${ready.payload.code}: ${ready.payload.message}`);
      }
      if (ready.type !== FrameType.Ready) throw protocolError(`expected ready, got frame type ${ready.type}`);
      const adopted = (ready.payload.adopted as string[]).filter((n) => names.includes(n));
      const missing = names.filter((n) => !adopted.includes(n));
      if (this.#requireAdopted === "all" ? missing.length > 0 : adopted.length === 0) {
        throw new UnixAncillaryError("ERR_UA_ABORTED", `the successor did not adopt ${missing.map((n) => JSON.stringify(n)).join(", ")} (requireAdopted: "${this.#requireAdopted}"); the old side keeps serving`);
      }
      if (this.#state !== "upgrading") throw new UnixAncillaryError("ERR_UA_ABORTED", "the handoff server was closed");
      // Stop accepting (from a fresh event-loop turn, see gate.ts), then tell the successor to start.
      const { at } = await pauseGates(gates);
      if (this.#state !== "upgrading") throw new UnixAncillaryError("ERR_UA_ABORTED", "the handoff server was closed");
      chan.send(FrameType.Done, { pid: process.pid });
      const serving = await chan.recv(deadline, "the successor's serving frame");
      if (serving.type === FrameType.Abort) {
        peerAborted = true;
        throw new UnixAncillaryError("ERR_UA_ABORTED", `upgrader aborted after done: ${serving.payload.code}: ${serving.payload.message}`);
      }
      if (serving.type !== FrameType.Serving) throw protocolError(`expected serving, got frame type ${serving.type}`);
      if (this.#state !== "upgrading") throw new UnixAncillaryError("ERR_UA_ABORTED", "the handoff server was closed");
      // Commit point: the successor accepts from the shared queues; this process never will again.
      this.#state = "upgraded";
      this.#gates = gates;
      for (const n of names) markDraining(this.#sources.get(n));
      const result: UpgradeResult = {
        pid: peer.pid ?? (ready.payload.pid as number),
        uid: cred.uid,
        adopted,
        offered: names,
        latencyMs: performance.now() - started,
        stoppedAcceptingAt: at,
      };
      chan.close();
      this.#closeControl();
      for (const w of this.#waiters.splice(0)) w({ ok: true, result });
      this.#resolve(result);
      return { ok: true, result };
    } catch (e) {
      let err = e instanceof Error ? e : new Error(String(e));
      if (err instanceof UnixAncillaryError && err.code === "ERR_UA_TIMEOUT" && !err.message.includes("timeoutMs")) {
        err = new UnixAncillaryError("ERR_UA_TIMEOUT", `the upgrade attempt's deadline (timeoutMs ${this.#timeoutMs}) passed: ${err.message}`);
      }
      if (!peerAborted && !(err instanceof PeerClosedError)) {
        const code = err instanceof UnixAncillaryError ? err.code : "ERR_UA_PROTOCOL";
        chan.sendAbort(code, err.message);
      }
      resumeGates(gates);
      chan.close();
      if (this.#state === "upgrading") this.#state = "idle";
      this.#fail(err, peer);
      return { ok: false, error: err };
    } finally {
      pidfd?.close();
    }
  }

  /** Resolves with the outcome of the next attempt (success or failure). */
  nextAttempt(): Promise<{ ok: true; result: UpgradeResult } | { ok: false; error: Error }> {
    return new Promise((r) => this.#waiters.push(r));
  }

  /**
   * tableflip-style: spawn the successor with a fresh control socketpair on its fd 3
   * (env UA_HANDOFF_FD=3), run the handshake with it, and report the outcome. On failure or
   * timeout the child is killed and the old side carries on.
   */
  spawn(cmd: string[], opts: SpawnOptions = {}): Promise<SpawnResult> {
    if (this.#state !== "idle") {
      return Promise.resolve({ ok: false, error: new UnixAncillaryError("ERR_UA_BUSY", `cannot spawn a successor while ${this.#state}`), child: null, latencyMs: 0 });
    }
    return spawnWith(cmd, { timeoutMs: this.#timeoutMs, ...opts }, (sock) => this.#handle(new Channel(sock)));
  }

  #closeControl(): void {
    const l = this.#listener;
    this.#listener = null;
    if (!l) return;
    if (!l.closed) {
      forgetFd(l.fd);
      l.close();
    }
    // Unlink the path only if it is still our socket file (a successor may have renamed its own over it).
    if (this.#path && this.#fileId) {
      try {
        if (sys.fileIdentity(this.#path) === this.#fileId) nodeFs().unlinkSync(this.#path);
      } catch {
        // already gone
      }
    }
  }

  /**
   * After `upgraded`: stop accepting on every offered listener, let in-flight requests finish within
   * `graceMs`, close idle keep-alive connections, force the rest, and optionally exit. The hard limit
   * exits even if a drain hangs.
   */
  async drain(opts: DrainOptions = {}): Promise<{ forced: boolean; reports: DrainReport[] }> {
    const graceMs = intOption("graceMs", opts.graceMs, 0, MAX_TIMEOUT_MS, 10_000);
    const hardMs = intOption("hardMs", opts.hardMs, 0, MAX_TIMEOUT_MS, graceMs + 5_000);
    const exitCode = opts.exit === true ? 0 : typeof opts.exit === "number" ? opts.exit : null;
    let hard: ReturnType<typeof setTimeout> | null = null;
    if (exitCode !== null) {
      hard = setTimeout(() => process.exit(exitCode), hardMs);
      (hard as unknown as { unref?: () => void }).unref?.();
    }
    this.close();
    if (this.#gates.length === 0) {
      // Drained without a committed upgrade (or before it): stop accepting the same way first.
      const gates: AcceptGate[] = [];
      for (const [name, src] of this.#sources) {
        try {
          gates.push(new AcceptGate(resolveSource(name, src).fd));
        } catch {
          // already stopped
        }
      }
      await pauseGates(gates);
      this.#gates = gates;
    }
    const lopts: DrainListenerOptions = { graceMs, windowMs: opts.windowMs, onConnection: opts.onConnection, pollMs: opts.pollMs };
    const failed = (e: unknown): DrainReport => ({ kind: `error: ${(e as Error)?.message}`, forced: true, elapsedMs: 0, windowMs: 0, websocketsClosed: 0, connectionsNotified: 0 });
    const reports = await Promise.all([...this.#sources.values()].map((s) => drainSource(s, lopts).catch(failed)));
    const forced = reports.some((r) => r.forced);
    if (hard) clearTimeout(hard);
    if (exitCode !== null) process.exit(exitCode);
    return { forced, reports };
  }

  /** Stops offering (closes the control socket; an upgrade in progress is aborted). Idempotent. */
  close(): void {
    if (this.#state === "closed") return;
    const prev = this.#state;
    this.#state = "closed";
    this.#closeControl();
    if (prev !== "upgraded") this.#reject(new UnixAncillaryError("ERR_UA_ABORTED", "the handoff server was closed before an upgrade"));
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Old side: offer `listeners` on a control socket. See HandoffServer. */
export function serveHandoff(listeners: Record<string, HandoffSource>, opts: ServeHandoffOptions = {}): HandoffServer {
  return new HandoffServer(listeners, opts);
}

/**
 * tableflip-style one-shot: offer `listeners` to a freshly spawned successor (control socketpair on
 * its fd 3) and report the outcome. On success, `server.drain()` stops the old listeners.
 */
export async function spawnSuccessor(
  cmd: string[],
  opts: SpawnOptions & { listeners: Record<string, HandoffSource>; peerPolicy?: PeerPolicy; onUpgrade?: ServeHandoffOptions["onUpgrade"] },
): Promise<SpawnResult & { server: HandoffServer }> {
  const server = new HandoffServer(opts.listeners, { timeoutMs: opts.timeoutMs, peerPolicy: opts.peerPolicy, onUpgrade: opts.onUpgrade });
  const r = await server.spawn(cmd, opts);
  if (!r.ok) server.close();
  return { ...r, server };
}

/** Runs a user callback, rejecting with ERR_UA_TIMEOUT at `deadline` (performance.now() ms) if it has not settled. */
async function beforeDeadline<A, R>(fn: (a: A) => R | Promise<R>, arg: A, deadline: number): Promise<R> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const left = Math.max(0, deadline - performance.now());
  try {
    return await Promise.race([
      (async () => {
        try {
          return await fn(arg);
        } catch (e) {
          throw new UnixAncillaryError("ERR_UA_PEER_REJECTED", `onUpgrade refused: ${(e as Error)?.message ?? String(e)}`);
        }
      })(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new UnixAncillaryError("ERR_UA_TIMEOUT", `onUpgrade did not settle within the attempt's deadline (${Math.round(left)} ms left of timeoutMs)`)), left);
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}
