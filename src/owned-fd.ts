/**
 * OwnedFd: the only way a received fd reaches a caller.
 *
 * Ownership contract: an OwnedFd owns exactly one open fd from construction until close() or release().
 * close() closes it exactly once (idempotent); release() hands the number back to the caller, who then
 * owns it (both first cancel the library's pending waits on it: sys.ts close hook). After either,
 * `fd` throws ERR_UA_CLOSED, so a stale number is never used by mistake. A FinalizationRegistry
 * closes fds whose OwnedFd was dropped unclosed — a safety net only (it never runs at process exit and
 * the GC cannot see fd pressure). With UNIX_ANCILLARY_DEBUG set, every OwnedFd
 * records where it was created and the net's warning names that site, so a missing close() can be found.
 *
 * Registration is deferred to the next event-loop turn (setImmediate) or to every 256 new objects: an
 * OwnedFd closed before then — the receive-use-close hot path, also across the `await` of an async
 * receive — never pays for the registry (register + unregister ≈ 80–120 ns per fd). Until then the
 * pending stack holds the object strongly, so nothing can be collected unregistered.
 */
import { closeFd, dupCloexec, isOpen, runCloseHook } from "./sys.ts";
import { closedError, invalidArgType, SystemError } from "./errors.ts";
import { abi } from "./platform/index.ts";
import { heldFd } from "./held-fd.ts";
import { describe } from "./cmsg/sizes.ts";

const debug = !!process.env.UNIX_ANCILLARY_DEBUG;

/** Debug mode only: where each OwnedFd was created, so a leak report can name the code that dropped it. */
const sites: WeakMap<OwnedFd, string> | null = debug ? new WeakMap() : null;

function creationSite(): string {
  const frames = (new Error().stack ?? "").split("\n").slice(1);
  // Skip the library's own frames (this module, the socket/receive code that created the OwnedFd).
  const user = frames.filter((f) => !/[\\/]src[\\/](owned-fd|msg-io|socket|ancillary|sys)\.ts/.test(f));
  return (user.length > 0 ? user : frames).slice(0, 6).join("\n");
}

const leakNet = new FinalizationRegistry<number | { fd: number; site: string | undefined }>((held) => {
  const fd = typeof held === "number" ? held : held.fd;
  if (debug) {
    const site = typeof held === "number" ? undefined : held.site;
    console.warn(`unix-ancillary: fd ${fd} was garbage-collected without close(); closing it now${site ? `. It was created at:\n${site}` : ""}`);
  }
  closeFd(fd);
});

/**
 * What the sends (and every fd argument) accept: an fd number, an OwnedFd, anything with a numeric
 * `fd` (Bun.listen listeners, Bun.connect sockets, fs/promises FileHandle), or a server/socket object
 * whose fd is found for you (`HeldFdSource`). The fd is lent for the call; it stays the caller's.
 */
export type FdLike = number | OwnedFd | { readonly fd: number } | HeldFdSource;

/** Objects without a public fd that sends resolve: net.Server / http.Server, net.Socket, a Bun.serve server. */
export type HeldFdSource = import("node:net").Server | import("node:net").Socket | Bun.Server<any>;

const INT32_MAX = 0x7fff_ffff;

function checkFdNumber(n: unknown, name: string): number {
  if (typeof n !== "number" || !Number.isInteger(n)) {
    throw invalidArgType(name, "an integer fd, an OwnedFd or an object with a numeric fd property", describe(n));
  }
  if (n < 0 || n > INT32_MAX) {
    const e = new RangeError(`The value of "${name}" is out of range. It must be >= 0 and <= ${INT32_MAX}. Received ${n}`);
    (e as RangeError & { code: string }).code = "ERR_OUT_OF_RANGE";
    throw e;
  }
  return n;
}

/** fdOf(list[i]) with the argument name built only when it throws (hot path: no string per fd). */
export function fdAt(list: readonly FdLike[], i: number, listName: string): number {
  const x = list[i];
  if (typeof x === "number" && x >= 0 && x <= INT32_MAX && (x | 0) === x) return x;
  if (x instanceof OwnedFd) return x.fd;
  return fdOf(x as FdLike, `${listName}[${i}]`);
}

/** The fd number an FdLike lends right now. Throws if it is a closed OwnedFd or not an fd at all. */
export function fdOf(x: FdLike, name = "fd"): number {
  if (typeof x === "number") return checkFdNumber(x, name);
  if (x instanceof OwnedFd) return x.fd;
  if (x !== null && typeof x === "object" && "fd" in x) return checkFdNumber((x as { fd: unknown }).fd, `${name}.fd`);
  const held = heldFd(x, name);
  if (held !== null) return held;
  throw invalidArgType(name, "an integer fd, an OwnedFd, an object with a numeric fd property (a Bun.listen listener, a socket, a FileHandle), a net.Server/net.Socket or a Bun.serve server", describe(x));
}

/**
 * OwnedFds not yet registered with the leak net, as a stack: the constructor pushes, a close() of the
 * top pops (with every closed object right below it), the next event-loop turn or a full stack registers
 * the rest.
 * Fixed-size storage (resetting an array's length frees it and the next push reallocates, which cost
 * more than the registry did in the hot loop); all state on one object, read through inline caches.
 */
class PendingStack {
  readonly items: (OwnedFd | undefined)[] = new Array<OwnedFd | undefined>(256).fill(undefined);
  count = 0;
  queued = false;
}
const pending = new PendingStack();
const PENDING_LIMIT = 256;

/** _closeEach's scratch list of numbers marked closed but not yet passed to close(2), and whether it is in use. */
const closingNumbers = new Int32Array(PENDING_LIMIT);
let batchClosing = false;
const NO_ERROR: unique symbol = Symbol("no error");

/**
 * close(2) of numbers[0..n). Never throws: closeFd closes its fd even when the close hook throws, and
 * the loop goes on with the next number; the first such error is returned (NO_ERROR if none).
 */
function closeNumbers(numbers: Int32Array, n: number): unknown {
  let error: unknown = NO_ERROR;
  for (let i = 0; i < n; ) {
    try {
      for (; i < n; i++) closeFd(numbers[i]!);
    } catch (e) {
      if (error === NO_ERROR) error = e;
      i++;
    }
  }
  return error;
}

/** An element of a closed array that is not an OwnedFd: its own close(), if it has one. */
function closeForeign(o: unknown): void {
  const close = typeof o === "object" && o !== null ? (o as { close?: unknown }).close : undefined;
  if (typeof close === "function") close.call(o);
}

function flushOnNextTurn(): void {
  pending.queued = false;
  flushPending();
}

function flushPending(): void {
  const items = pending.items;
  const n = pending.count;
  pending.count = 0;
  for (let i = 0; i < n; i++) {
    const o = items[i]!;
    items[i] = undefined;
    o._enroll();
  }
}

function enqueue(o: OwnedFd): void {
  const p = pending;
  const n = p.count;
  p.items[n] = o;
  p.count = n + 1;
  if (n + 1 >= PENDING_LIMIT) flushPending();
  else if (!p.queued) {
    p.queued = true;
    setImmediate(flushOnNextTurn);
  }
}

/** enqueue() for a whole batch, in order (its last element ends on top of the stack). */
function enqueueAll(batch: readonly OwnedFd[]): void {
  const p = pending;
  const k = batch.length;
  if (k === 0) return;
  // Invariant: count < PENDING_LIMIT after every enqueue (enqueue() flushes when it reaches it).
  let n = p.count;
  if (n + k >= PENDING_LIMIT) {
    flushPending();
    n = 0;
  }
  if (k >= PENDING_LIMIT) {
    // larger than the whole stack (only darwin's RLIMIT-sized receives): register them right away
    for (let i = 0; i < k; i++) batch[i]!._enroll();
    return;
  }
  const items = p.items;
  for (let i = 0; i < k; i++) items[n + i] = batch[i];
  p.count = n + k;
  if (!p.queued) {
    p.queued = true;
    setImmediate(flushOnNextTurn);
  }
}

let numberOf: (x: unknown) => number;

/**
 * The number a genuine OwnedFd owns right now, read from its private slot (-1 once closed or released,
 * and for anything that is not an OwnedFd, whatever its prototype or own properties say).
 */
export function ownedNumberOf(x: unknown): number {
  return numberOf(x);
}

/**
 * An open file descriptor that this object owns: it closes it exactly once (close(), `using`, or as
 * a last resort the garbage collector's safety net). Every fd the library hands you is an OwnedFd.
 * Take a number you own with OwnedFd.from(n); give ownership back with release().
 * @throws UnixAncillaryError ERR_UA_CLOSED when `fd` is read after close() or release()
 */
export class OwnedFd implements Disposable {
  #fd: number;
  #enrolled = false;

  /** @internal Use OwnedFd.from(n) to take ownership of a number. */
  constructor(fd: number, token: typeof INTERNAL | typeof INTERNAL_BATCH) {
    if (token !== INTERNAL && token !== INTERNAL_BATCH) throw new TypeError("Illegal constructor: use OwnedFd.from(fd)");
    this.#fd = fd;
    if (sites !== null) sites.set(this, creationSite());
    // a batch is pushed onto the pending stack as a whole by adoptSlots()
    if (token === INTERNAL) enqueue(this);
  }

  /** @internal Puts a still-open fd under the leak net. */
  _enroll(): void {
    if (this.#fd >= 0 && !this.#enrolled) {
      this.#enrolled = true;
      leakNet.register(this, sites === null ? this.#fd : { fd: this.#fd, site: sites.get(this) }, this);
    }
  }

  /** Takes ownership of an open fd number: from now on this object closes it. */
  static from(fd: number): OwnedFd {
    checkFdNumber(fd, "fd");
    // A number that is not open would otherwise become an OwnedFd that fails (or closes a reused
    // number) much later; one F_GETFD says so now.
    if (!isOpen(fd)) {
      const e = new SystemError("fcntl", abi.errno.EBADF);
      e.message = `OwnedFd.from(${fd}): fd ${fd} is not open (fcntl F_GETFD: EBADF)`;
      throw e;
    }
    return new OwnedFd(fd, INTERNAL);
  }

  /** The fd number. Throws ERR_UA_CLOSED once closed or released. */
  get fd(): number {
    if (this.#fd < 0) throw closedError(`OwnedFd`);
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** @internal The number, or -1 once closed or released: one read for the sockets' hot paths. */
  get _numberOrMinusOne(): number {
    return this.#fd;
  }

  static {
    numberOf = (x) => (typeof x === "object" && x !== null && #fd in x ? x.#fd : -1);
  }

  /** Closes the fd. Idempotent: later calls do nothing. */
  close(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#fd = -1;
    this.#disown();
    closeFd(fd);
  }

  /**
   * Gives up ownership and returns the number; the caller must close it. Like close(), it first ends
   * the library's interest in the number: a pending async operation on it (a socket made with
   * fromFd(this)) is rejected with ERR_UA_CLOSED and its readiness registration dropped, because the
   * library can no longer know what the number will name.
   */
  release(): number {
    const fd = this.fd;
    this.#fd = -1;
    this.#disown();
    runCloseHook(fd);
    return fd;
  }

  /**
   * Takes a just-closed object off the leak net: unregisters it, or, while it is still waiting for
   * registration at the top of the pending stack, pops it and every closed object below it — so the
   * receive-use-close pattern leaves nothing for the flush to visit and holds nothing alive.
   */
  #disown(): void {
    if (this.#enrolled) {
      leakNet.unregister(this);
      return;
    }
    const top = pending.count;
    if (top > 0 && pending.items[top - 1] === this) OwnedFd.#popClosed(); // this one is closed already
  }

  /**
   * @internal close() for every element of an array. Two passes per chunk of up to 256: every OwnedFd
   * is marked closed and taken off the leak net, then the numbers are closed. Each close(2) evicts
   * much of the cache, so touching an object between two closes cost a cache miss per fd
   * (bench/README.md, "Hot-path changes"). The pending-stack bookkeeping is done once at the end (a
   * received batch closed in order has only its last element on top, and popping it pops the rest).
   *
   * The elements present when the call starts are attempted, each once, whatever throws: an element
   * that is not an OwnedFd (a caller put something else in the array) gets its own close(), if it has
   * one, after the numbers collected so far are closed (no user code runs while the scratch list holds
   * numbers, except an index getter or Proxy trap reading the next element); an index read that throws
   * skips that element. The first error is thrown at the end. A call made while another is collecting
   * (from such user code) closes each fd at once instead of sharing the scratch list.
   */
  static _closeEach(fds: readonly OwnedFd[]): void {
    if (batchClosing) {
      OwnedFd.#closeEachAtOnce(fds);
      return;
    }
    const count = fds.length; // read once, before anything is marked
    batchClosing = true;
    const numbers = closingNumbers;
    let n = 0;
    let popNeeded = false;
    let failure: { error: unknown } | null = null;
    try {
      for (let i = 0; i < count; ) {
        // The only throw that reaches the catch is an element read (an index getter, a Proxy trap):
        // that element is skipped, the loop goes on.
        try {
          for (; i < count; i++) {
            const o = fds[i];
            if (typeof o !== "object" || o === null || !(#fd in o)) {
              const error = closeNumbers(numbers, n);
              n = 0;
              if (error !== NO_ERROR) failure ??= { error };
              try {
                closeForeign(o);
              } catch (e) {
                failure ??= { error: e };
              }
              continue;
            }
            const fd = o.#fd;
            if (fd < 0) continue;
            o.#fd = -1;
            numbers[n++] = fd; // marked and collected with no call in between
            if (o.#enrolled) leakNet.unregister(o);
            else popNeeded = true;
            if (n === numbers.length) {
              const error = closeNumbers(numbers, n);
              n = 0;
              if (error !== NO_ERROR) failure ??= { error };
            }
          }
        } catch (e) {
          failure ??= { error: e };
          i++;
        }
      }
    } finally {
      batchClosing = false; // before any call: even a stack overflow cannot leave it set
      const error = closeNumbers(numbers, n);
      if (popNeeded) OwnedFd.#popClosed();
      if (error !== NO_ERROR) failure ??= { error };
    }
    if (failure !== null) throw failure.error;
  }

  /** _closeEach for a nested call: one element at a time, nothing shared; the same error rules. */
  static #closeEachAtOnce(fds: readonly OwnedFd[]): void {
    const count = fds.length;
    let failure: { error: unknown } | null = null;
    for (let i = 0; i < count; i++) {
      try {
        const o = fds[i];
        if (typeof o === "object" && o !== null && #fd in o) o.close();
        else closeForeign(o);
      } catch (e) {
        failure ??= { error: e };
      }
    }
    if (failure !== null) throw failure.error;
  }

  /** Pops closed (or released) objects off the top of the pending stack. */
  static #popClosed(): void {
    const p = pending;
    const items = p.items;
    let top = p.count;
    while (top > 0 && items[top - 1]!.#fd < 0) items[--top] = undefined;
    p.count = top;
  }

  /** A new OwnedFd for the same open file description (F_DUPFD_CLOEXEC). */
  dup(): OwnedFd {
    return new OwnedFd(dupCloexec(this.fd), INTERNAL);
  }

  /** Whether the number still names an open fd in this process (diagnostics). */
  isValid(): boolean {
    return this.#fd >= 0 && isOpen(this.#fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  toString(): string {
    return this.#fd < 0 ? "OwnedFd(closed)" : `OwnedFd(${this.#fd})`;
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

const INTERNAL: unique symbol = Symbol("OwnedFd.internal");

const INTERNAL_BATCH: unique symbol = Symbol("OwnedFd.internalBatch");

/**
 * @internal OwnedFds for the `slots` consecutive fd numbers at `words[first..]` (numbers the library
 * just received; negative ones are skipped), pushed onto the pending stack in one step.
 */
export function adoptSlots(words: Int32Array, first: number, slots: number): OwnedFd[] {
  // Sized up front (no growth while filling); trimmed if the kernel left negative slots.
  const out = new Array<OwnedFd>(slots);
  let k = 0;
  for (let i = 0; i < slots; i++) {
    const fd = words[first + i]!;
    if (fd >= 0) out[k++] = new OwnedFd(fd, INTERNAL_BATCH);
  }
  if (k !== slots) out.length = k;
  enqueueAll(out);
  return out;
}

/** @internal Wraps a number the library just obtained from the kernel. */
export function adopt(fd: number): OwnedFd {
  return new OwnedFd(fd, INTERNAL);
}

/** Closes every OwnedFd in a list (idempotent per element). */
export function closeAll(fds: Iterable<OwnedFd>): void {
  if (Array.isArray(fds)) {
    // the common case (a receive's fds array): see _closeEach
    OwnedFd._closeEach(fds as OwnedFd[]);
    return;
  }
  for (const fd of fds) fd.close();
}

