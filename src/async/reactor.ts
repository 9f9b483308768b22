/**
 * The readiness reactor: the main-thread side of async I/O (docs/design.md, "The reactor").
 *
 * Bun cannot watch an arbitrary fd without reading it (which would discard in-flight fds), so one
 * lazily started Worker per JS thread that uses async I/O (the main thread, and each Worker of the
 * application that does) blocks in epoll_wait(-1) (kevent() on darwin/FreeBSD) and only
 * reports readiness. The socket classes always try their non-blocking syscall first and call
 * `waitFor` only after EAGAIN; every recvmsg/sendmsg/accept stays on the main thread.
 *
 * Registrations: one per fd, carrying the union of the interests somebody waits for, armed one-shot
 * (EPOLLONESHOT / EV_ONESHOT) under a token that is a registration id (never the fd number). After a
 * report the main thread resolves the waiters of the reported interests (all of them, FIFO) and
 * re-arms with EPOLL_CTL_MOD only if someone still waits. An idle registration stays in the set
 * (disabled by the one-shot) so the next wait costs one MOD; forget(fd) deletes it before close.
 *
 * Process lifetime: the Worker is ref'ed exactly while at least one wait is pending (like a pending
 * socket read in Bun) and unref'ed otherwise, so an idle reactor never keeps the process alive.
 * No exit hook: measured with strace on Bun 1.4.5, an unref'ed Worker blocked in epoll_wait does not
 * delay exit; Bun calls exit_group right after the 'exit' listeners, which ends the blocked thread.
 * Waking it from process.on("exit") only made it race the teardown (it woke ~35 us before
 * exit_group), so there is none. The Worker never installs onmessage (see reactor-worker.ts).
 *
 * fd ownership: the poll fd and wake fd are created once per JS thread and live as long as it
 * (src/async/thread-lifetime.ts closes them when the thread's heap is torn down, e.g. when the
 * application terminates a Worker that used async I/O). shutdownReactor stops the Worker thread only;
 * a later wait starts a new Worker on the same poll set.
 */
import { abi } from "../platform/index.ts";
import { UnixAncillaryError } from "../errors.ts";
import { setCloseHook } from "../sys.ts";
import { addAbortListener, removeAbortListener } from "../intrinsics.ts";
import { createEpollBackend } from "./backend-epoll.ts";
import { READABLE, WRITABLE, type Backend } from "./backend.ts";
import { createKqueueBackend } from "./backend-kqueue.ts";
import { abortError } from "./queue.ts";
import { reactorWorkerUrl, type ReactorWorkerMessage } from "./reactor-worker.ts";

export type Interest = "readable" | "writable";

export interface ReactorStats {
  /** Whether the Worker (and the poll set) exists. */
  started: boolean;
  /** fds with a registration (armed, or idle after a one-shot report). */
  registered: number;
  /** Waits not yet settled. */
  pending: number;
  /** Whether the Worker currently keeps the process alive (pending > 0). */
  workerRefed: boolean;
  /** "epoll" | "kqueue" once started. */
  backend: string | null;
  /** The fds this thread's reactor owns (poll fd, wake fd), kept from first use to the thread's end. */
  ownedFds: number[];
}

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

class Registration {
  readonly readers = new Set<Waiter>();
  readonly writers = new Set<Waiter>();
  /** Interests currently armed in the kernel (0 after a one-shot report). */
  armed = 0;
  /** Whether the fd is believed to be in the poll set. */
  inSet = false;
  constructor(readonly fd: number, readonly token: number) {}
  wanted(): number {
    return (this.readers.size > 0 ? READABLE : 0) | (this.writers.size > 0 ? WRITABLE : 0);
  }
}

interface Reactor {
  worker: Worker;
  refed: boolean;
  stopped: Promise<void>;
}

const MAX_EVENTS = 256;

let reactor: Reactor | null = null;
/** This thread's poll set, created on first use and kept for the thread's life (see the header). */
let backend: Backend | null = null;
const byFd = new Map<number, Registration>();
const byToken = new Map<number, Registration>();
let nextToken = 1; // 0 is the wake source
let pending = 0;

function start(): Reactor {
  const b = (backend ??= abi.os === "linux" ? createEpollBackend() : createKqueueBackend());
  // A previous Worker was stopped through the wake source; reset it or the new one stops at once.
  b.clearWake();
  const worker = new Worker(reactorWorkerUrl(), { workerData: b.workerData(MAX_EVENTS) } as WorkerOptions);
  worker.unref();
  let onStopped!: () => void;
  const stopped = new Promise<void>((r) => (onStopped = r));
  const self: Reactor = { worker, refed: false, stopped };
  worker.addEventListener("close", () => {
    onStopped();
    if (reactor === self) {
      reactor = null;
      failAll(new UnixAncillaryError("ERR_UA_CLOSED", "the reactor worker stopped"));
    }
  });
  worker.onmessage = (ev: MessageEvent<ReactorWorkerMessage>) => {
    const m = ev.data;
    if (Array.isArray(m)) {
      if (reactor === self) dispatch(m); // a shut-down reactor's late reports are dropped
    }
    else if (m.type === "error" && reactor === self) {
      reactor = null;
      failAll(new UnixAncillaryError("ERR_UA_CLOSED", `the reactor worker failed: ${m.message}`));
    }
  };
  worker.onerror = (ev: ErrorEvent) => {
    if (reactor === self) {
      reactor = null;
      failAll(new UnixAncillaryError("ERR_UA_CLOSED", `the reactor worker failed: ${ev.message}`));
    }
  };
  return self;
}

function setPending(delta: number): void {
  pending += delta;
  const r = reactor;
  if (!r) return;
  if (pending > 0 && !r.refed) {
    r.worker.ref();
    r.refed = true;
  } else if (pending === 0 && r.refed) {
    r.worker.unref();
    r.refed = false;
  }
}

/** Handles one batch [token, mask, ...] from the Worker. */
function dispatch(batch: readonly number[]): void {
  for (let i = 0; i + 1 < batch.length; i += 2) {
    const reg = byToken.get(batch[i]!);
    if (!reg) continue; // a stale report for a forgotten/aborted registration
    const mask = backend!.maskFor(batch[i + 1]!);
    reg.armed = 0; // one-shot: the kernel disabled the registration when it reported it
    if (mask & READABLE) settleAll(reg.readers, undefined);
    if (mask & WRITABLE) settleAll(reg.writers, undefined);
    rearm(reg);
  }
}

/** Arms whatever is still wanted and not armed; drops an empty registration only via forget/abort. */
function rearm(reg: Registration): void {
  const want = reg.wanted();
  if (want === 0 || (want & ~reg.armed) === 0) return;
  if (!reactor) return;
  try {
    backend!.arm(reg.fd, reg.token, want, reg.inSet);
    reg.inSet = true;
    reg.armed = want;
  } catch (e) {
    // The fd went bad underneath (closed without forget): every waiter learns it now.
    drop(reg);
    settleAll(reg.readers, e);
    settleAll(reg.writers, e);
  }
}

function settleAll(set: Set<Waiter>, error: unknown): void {
  if (set.size === 0) return;
  const list = [...set];
  set.clear();
  for (const w of list) settle(w, error);
}

function settle(w: Waiter, error: unknown): void {
  if (w.onAbort) removeAbortListener(w.signal!, w.onAbort);
  setPending(-1);
  if (error === undefined) w.resolve();
  else w.reject(error);
}

/** Removes a registration from the maps and the poll set. */
function drop(reg: Registration): void {
  byFd.delete(reg.fd);
  byToken.delete(reg.token);
  if (reg.inSet && backend) {
    try {
      backend.remove(reg.fd);
    } catch {
      // remove() already ignores ENOENT/EBADF; anything else leaves a disabled one-shot entry at worst
    }
  }
  reg.inSet = false;
  reg.armed = 0;
}

/** Rejects every waiter with `error` and forgets every registration (leaving the poll set too). */
function failAll(error: unknown): void {
  const regs = [...byFd.values()];
  for (const reg of regs) drop(reg);
  for (const reg of regs) {
    settleAll(reg.readers, error);
    settleAll(reg.writers, error);
  }
}

/**
 * Resolves when `fd` is ready for `interest` (or has an error/hang-up: the caller's syscall then
 * reports it). Rejects with ERR_UA_ABORTED (cause: signal.reason) if `signal` aborts, ERR_UA_CLOSED if
 * forget(fd) is called while waiting, or a SystemError if the fd cannot be watched (EBADF, EPERM).
 */
export function waitFor(fd: number, interest: Interest, signal?: AbortSignal): Promise<void> {
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fff_ffff) return Promise.reject(new RangeError(`invalid fd ${String(fd)}`));
  const bit = interest === "readable" ? READABLE : interest === "writable" ? WRITABLE : 0;
  if (bit === 0) return Promise.reject(new TypeError(`interest must be "readable" or "writable", got ${String(interest)}`));
  if (signal?.aborted) return Promise.reject(abortError(signal));

  if (!reactor) {
    try {
      reactor = start();
    } catch (e) {
      return Promise.reject(e);
    }
    // From now on every library close first drops that fd's registration. Installed once: a close
    // with nothing registered pays one Map lookup (unmeasurable next to the syscall, bench/README.md).
    setCloseHook(forgetOnClose);
  }
  let reg = byFd.get(fd);
  const fresh = reg === undefined;
  if (!reg) {
    reg = new Registration(fd, nextToken++);
    byFd.set(fd, reg);
    byToken.set(reg.token, reg);
  }
  const want = reg.wanted() | bit;
  if ((want & ~reg.armed) !== 0) {
    try {
      backend!.arm(fd, reg.token, want, reg.inSet);
      reg.inSet = true;
      reg.armed = want;
    } catch (e) {
      if (fresh || reg.wanted() === 0) drop(reg);
      return Promise.reject(e);
    }
  }

  const set = bit === READABLE ? reg.readers : reg.writers;
  const registration = reg;
  return new Promise<void>((resolve, reject) => {
    const w: Waiter = { resolve, reject, signal, onAbort: undefined };
    if (signal) {
      w.onAbort = () => {
        if (!set.delete(w)) return;
        w.onAbort = undefined; // {once: true} already removed it
        setPending(-1);
        reject(abortError(signal));
        if (byToken.get(registration.token) !== registration) return;
        if (registration.wanted() === 0) drop(registration);
        else if ((registration.armed & ~registration.wanted()) !== 0 && reactor) {
          // Narrow the armed set so the aborted interest doesn't produce a spurious report.
          try {
            backend!.arm(registration.fd, registration.token, registration.wanted(), registration.inSet);
            registration.armed = registration.wanted();
          } catch {
            // leave it; the report will be ignored or re-armed
          }
        }
      };
      addAbortListener(signal, w.onAbort);
    }
    set.add(w);
    setPending(+1);
  });
}

/**
 * Cancels every pending wait on `fd` (rejecting with ERR_UA_CLOSED) and removes `fd` from the poll
 * set. Call it BEFORE closing the fd, while the number still names the same file. Synchronous.
 */
export function forget(fd: number): void {
  const reg = byFd.get(fd);
  if (!reg) return;
  drop(reg);
  const error = new UnixAncillaryError("ERR_UA_CLOSED", `fd ${fd} was closed while waiting for readiness`);
  settleAll(reg.readers, error);
  settleAll(reg.writers, error);
}

// Any fd the library closes (OwnedFd.close, socket close, handoff code) leaves the epoll set first: a
// registration must never outlive its file, or a reused fd number would look "already armed" and a
// wait on it would never fire.
// Installed when the reactor first starts: a program that never waits pays nothing on close.
function forgetOnClose(fd: number): void {
  if (byFd.has(fd)) forget(fd);
}

/** For tests and diagnostics. */
export function reactorStats(): ReactorStats {
  return {
    started: reactor !== null,
    registered: byFd.size,
    pending,
    workerRefed: reactor?.refed ?? false,
    backend: reactor ? backend!.name : null,
    ownedFds: backend === null ? [] : [backend.pollFd, backend.wakeFd].filter((fd) => fd >= 0),
  };
}

/**
 * Stops the Worker (tests and diagnostics). Pending waits reject with ERR_UA_CLOSED and every fd
 * leaves the poll set. The poll fds stay (they live as long as this JS thread); a later waitFor starts
 * a new Worker on them.
 */
export async function shutdownReactor(): Promise<void> {
  const r = reactor;
  if (!r) return;
  reactor = null;
  failAll(new UnixAncillaryError("ERR_UA_CLOSED", "the reactor was shut down"));
  r.worker.ref(); // keep the process alive until the thread has really gone
  backend!.wake();
  // No terminate() fallback: terminating a thread that is inside its FFI epoll_wait crashes Bun.
  await r.stopped;
}
