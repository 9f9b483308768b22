/**
 * UnixSocket: the behaviour every connected Unix socket shares — sync and async send and receive
 * through the engine (msg-io.ts), close/intoFd, addresses.
 *
 * Ownership contract: each socket owns one OwnedFd (created by its class, or moved in by fromFd) and
 * closes it exactly once on close()/dispose. Fds passed to send methods are borrowed for the duration
 * of the call and stay the caller's (an async send that has to wait holds its own duplicates until it
 * settles, see coerce.ts holdFds). Fds returned by receive methods are the caller's OwnedFds; every fd
 * a receive does not return (surplus, truncated batch, count mismatch) is closed before the method
 * returns or throws (see msg-io.ts).
 *
 * Stream caveat (every stream method): Unix streams do not preserve send boundaries. One receive may
 * return bytes and fds from several sends or part of one; fds ride on the first byte of the send that
 * carried them. recvFdsExact checks the fd count of one receive; it does not read a whole frame.
 */
import { K } from "../platform/index.ts";
import { adopt, closeAll, OwnedFd, type FdLike } from "../owned-fd.ts";
import { engine, Kind, WOULD_BLOCK_FDS } from "../msg-io.ts";
import * as sys from "../sys.ts";
import { closedError, invalidArgType, MESSAGES, outOfRange, UnixAncillaryError } from "../errors.ts";
import { describe } from "../cmsg/sizes.ts";
import { viewByteLength } from "../intrinsics.ts";
import { OpQueue, abortError } from "../async/queue.ts";
import { forget, waitFor } from "../async/wait.ts";
import { AGAIN, attemptOnce, orAgain, YIELDS, type Attempt } from "../async/attempt.ts";
import { checkFdList, checkMaxFds, holdFds, maxMessagesOf, resolveFdList, signalOf, toByteList, toBytes, toWritable, type AsyncOptions, type BatchOptions, type Payload, type RecvOptions } from "./coerce.ts";
import { ReceivedFds, ReceivedInto } from "./results.ts";

/** Default data buffers of the allocating receives (crate: DEFAULT_STREAM_BUF / DEFAULT_DATAGRAM_BUF). */
export const DEFAULT_STREAM_BUFFER = 4096;
/** Data buffer of the allocating receives on datagram and seqpacket sockets (bytes). */
export const DEFAULT_DATAGRAM_BUFFER = 65536;

let streamScratch: Uint8Array | null = null;
let messageScratch: Uint8Array | null = null;

/** Behaviour shared by every connected Unix socket. */
export abstract class UnixSocket implements Disposable {
  // The socket may share this object with whoever passed it to fromFd(): if they close or release it,
  // the socket is closed too. So the number is always read from it, never cached here.
  #owned: OwnedFd;
  #recvQueue: OpQueue | null = null;
  #sendQueue: OpQueue | null = null;
  /** An error recvFdsBatch met after its first message: thrown by this socket's next receive. */
  #deferredRecvError: unknown = null;
  protected abstract readonly kind: Kind;
  protected abstract readonly label: string;

  protected constructor(owned: OwnedFd) {
    this.#owned = owned;
  }

  protected get recvQueue(): OpQueue {
    return (this.#recvQueue ??= new OpQueue());
  }

  protected get sendQueue(): OpQueue {
    return (this.#sendQueue ??= new OpQueue());
  }

  /** The socket's fd number (borrowed: the socket still owns it). Throws once closed. */
  get fd(): number {
    const fd = this.#owned._numberOrMinusOne;
    if (fd < 0) throw closedError(this.label);
    return fd;
  }

  get closed(): boolean {
    return this.#owned._numberOrMinusOne < 0;
  }

  /**
   * @internal The OwnedFd this socket took (the engine keys per-socket state on it: msg-io.ts,
   * SO_NOSIGPIPE). Read from the private slot: null for anything that is not a UnixSocket.
   */
  static _ownedOf(x: unknown): OwnedFd | null {
    return typeof x === "object" && x !== null && #owned in x ? x.#owned : null;
  }

  /** @internal For the subclasses' own engine calls (see _ownedOf). */
  protected get _ownedFd(): OwnedFd {
    return this.#owned;
  }

  /** Closes the socket. Idempotent. */
  close(): void {
    const fd = this.#owned._numberOrMinusOne;
    if (fd < 0) return;
    this.#deferredRecvError = null;
    this.onClose(fd);
    this.#owned.close();
  }

  /** Pending async operations on this fd are rejected with ERR_UA_CLOSED before the number is released. */
  protected onClose(fd: number): void {
    forget(fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Gives up the socket: returns its OwnedFd (the caller owns it) and leaves this object closed. */
  intoFd(): OwnedFd {
    const fd = this.fd;
    this.#deferredRecvError = null;
    this.onClose(fd);
    const moved = adopt(this.#owned.release());
    return moved;
  }

  /** shutdown(2): "read", "write" or "both". */
  shutdown(how: "read" | "write" | "both" = "both"): void {
    sys.shutdown(this.fd, how === "read" ? K.SHUT_RD : how === "write" ? K.SHUT_WR : K.SHUT_RDWR);
  }

  localAddress(): sys.SocketAddress {
    return sys.getsockname(this.fd);
  }

  peerAddress(): sys.SocketAddress {
    return sys.getpeername(this.fd);
  }

  // ---- send -------------------------------------------------------------------------------------

  /**
   * One sendmsg carrying `data` and one SCM_RIGHTS message with `fds` (which stay yours). Returns the
   * bytes accepted; on a stream that may be fewer than data.length, and the fds ride with that prefix.
   * Streams reject fds with an empty payload (the kernel would drop them silently).
   */
  sendFdsSync(data: Payload, fds?: readonly FdLike[]): number {
    const bytes = toBytes(data);
    const list = checkFdList(fds);
    void this.fd; // a closed socket fails before anything else
    const size = viewByteLength(bytes);
    this.checkPayload(size, list.length);
    if (size === 0 && list.length === 0 && this.kind === Kind.Stream) return 0;
    // The engine resolves the list first — that may run user code ({ fd } getters) — and only then
    // reads our fd and takes the payload's address (see Sender.#stageRights in msg-io.ts).
    return engine.sendOne(this, this.#owned, bytes, list, 0);
  }

  /** One sendmsg gathering `buffers` in order, with `fds` attached. No "all" variant: finish a partial send yourself without resending fds. */
  sendFdsVectoredSync(buffers: readonly Payload[], fds?: readonly FdLike[]): number {
    const list = toByteList(buffers, "buffers");
    const fdList = checkFdList(fds);
    void this.fd; // a closed socket fails before anything else
    let total = 0;
    for (const b of list) total += viewByteLength(b);
    this.checkPayload(total, fdList.length);
    if (total === 0 && fdList.length === 0 && this.kind === Kind.Stream) return 0;
    return engine.sendMany(this, this.#owned, list, fdList, 0); // resolves the list before reading our fd
  }

  protected checkPayload(bytes: number, fds: number): void {
    if (this.kind === Kind.Stream && bytes === 0 && fds > 0) {
      throw new UnixAncillaryError("ERR_UA_EMPTY_PAYLOAD", MESSAGES.emptyStreamPayload);
    }
  }

  // ---- receive ----------------------------------------------------------------------------------

  protected defaultBufferSize(): number {
    return this.kind === Kind.Stream ? DEFAULT_STREAM_BUFFER : DEFAULT_DATAGRAM_BUFFER;
  }

  #scratch(opts: RecvOptions | undefined): Uint8Array {
    let size = this.defaultBufferSize();
    if (opts !== undefined) {
      if (opts === null || typeof opts !== "object") throw invalidArgType("options", "an object", describe(opts));
      const requested: unknown = opts.bufferSize; // read once: a getter must not change it after the check
      if (requested !== undefined) {
        if (typeof requested !== "number" || !Number.isInteger(requested) || requested < 1 || requested > 1 << 30) {
          throw outOfRange("options.bufferSize", ">= 1 and <= 2^30", String(requested));
        }
        size = requested;
      }
    }
    if (size === DEFAULT_STREAM_BUFFER) return (streamScratch ??= new Uint8Array(DEFAULT_STREAM_BUFFER));
    if (size === DEFAULT_DATAGRAM_BUFFER) return (messageScratch ??= new Uint8Array(DEFAULT_DATAGRAM_BUFFER));
    return new Uint8Array(size);
  }

  // Every high-level receive, sync or async, goes through one of these two: the deferred error of a
  // receive batch (recvFdsBatch) is thrown here, by whichever receive comes next.
  // (The socket's number is read first: a closed socket says ERR_UA_CLOSED, whatever was deferred.)
  protected receive(maxFds: number, exact: boolean, buffers: readonly Uint8Array[], extraFlags: number): OwnedFd[] {
    const fd = this.fd;
    if (this.#deferredRecvError !== null) this.#throwDeferred();
    return engine.receiveFds(fd, buffers, maxFds, exact, this.kind, extraFlags);
  }

  protected receiveOne(maxFds: number, exact: boolean, buffer: Uint8Array, extraFlags: number): OwnedFd[] {
    const fd = this.fd;
    if (this.#deferredRecvError !== null) this.#throwDeferred();
    return engine.receiveOne(fd, buffer, maxFds, exact, this.kind, extraFlags);
  }

  #throwDeferred(): never {
    const e = this.#deferredRecvError;
    this.#deferredRecvError = null;
    throw e;
  }

  /** @internal For cmsgRecvmsg on a socket object: throws the error a receive batch deferred, if any. */
  _throwDeferredReceiveError(): void {
    if (this.#deferredRecvError !== null) this.#throwDeferred();
  }

  /**
   * Receives up to `maxFds` fds and the payload of one recvmsg (data copied out of an internal buffer
   * of 4096 bytes for streams, 65536 otherwise). Surplus fds are closed. Stream EOF returns 0 bytes.
   */
  recvFdsSync(maxFds: number, opts?: RecvOptions): ReceivedFds {
    checkMaxFds(maxFds);
    const scratch = this.#scratch(opts);
    let fds: OwnedFd[];
    try {
      fds = this.receiveOne(maxFds, false, scratch, 0);
    } catch (e) {
      throw withData(e, scratch);
    }
    return new ReceivedFds(scratch.slice(0, engine.bytesRead), fds);
  }

  /** Like recvFdsSync but requires exactly `n` fds in this one receive; otherwise closes them all and throws ERR_UA_FD_COUNT_MISMATCH. */
  recvFdsExactSync(n: number, opts?: RecvOptions): ReceivedFds {
    checkMaxFds(n, "n");
    const scratch = this.#scratch(opts);
    let fds: OwnedFd[];
    try {
      fds = this.receiveOne(n, true, scratch, 0);
    } catch (e) {
      throw withData(e, scratch);
    }
    return new ReceivedFds(scratch.slice(0, engine.bytesRead), fds);
  }

  /** Receives into your buffer: `{ bytesRead, fds }` with at most `maxFds` fds. */
  recvFdsIntoSync(maxFds: number, buffer: ArrayBufferView | ArrayBuffer): ReceivedInto {
    checkMaxFds(maxFds);
    const fds = this.receiveOne(maxFds, false, toWritable(buffer), 0);
    return new ReceivedInto(engine.bytesRead, fds);
  }

  /** Exact-count receive into your buffer. */
  recvFdsExactIntoSync(n: number, buffer: ArrayBufferView | ArrayBuffer): ReceivedInto {
    checkMaxFds(n, "n");
    const fds = this.receiveOne(n, true, toWritable(buffer), 0);
    return new ReceivedInto(engine.bytesRead, fds);
  }

  /** Scatter receive: the kernel fills `buffers` in order; `bytesRead` is the total. */
  recvFdsVectoredSync(maxFds: number, buffers: readonly (ArrayBufferView | ArrayBuffer)[]): ReceivedInto {
    checkMaxFds(maxFds);
    if (!Array.isArray(buffers)) throw invalidArgType("buffers", "an array of ArrayBufferViews", describe(buffers));
    const list = buffers.map((b, i) => toWritable(b, `buffers[${i}]`));
    const fds = this.receive(maxFds, false, list, 0);
    return new ReceivedInto(engine.bytesRead, fds);
  }

  // ---- async (non-blocking syscall first; the reactor only on EAGAIN) ---------------------------
  //
  // Every async method validates its arguments and, when no other operation of the same direction is
  // queued, makes its non-blocking attempt right away and returns an already-settled promise: a busy
  // socket never touches the reactor or an async function chain. Bad arguments reject (they never
  // throw synchronously from an async method).

  /**
   * One attempt at an allocating receive without blocking (recvFds, recvFdsExact, recvFdsBatch): the
   * message copied out of `scratch`, or AGAIN if nothing is there yet. An error carries the bytes read.
   */
  #tryReceiveFds(maxFds: number, exact: boolean, scratch: Uint8Array): ReceivedFds | typeof AGAIN {
    let fds: OwnedFd[];
    try {
      fds = this.receiveOne(maxFds, exact, scratch, K.MSG_DONTWAIT);
    } catch (e) {
      throw withData(e, scratch);
    }
    return fds === WOULD_BLOCK_FDS ? AGAIN : new ReceivedFds(scratch.slice(0, engine.bytesRead), fds);
  }

  /**
   * Retries `attempt` until it returns something other than AGAIN. Before the first reactor wait it
   * tries again after the queued microtasks and after one event-loop turn: a peer that is streaming to
   * us (in this process or another) has usually written by then, which saves the reactor thread's
   * wake-up (≈10–20 µs) per message. An idle socket pays two extra non-blocking syscalls before it waits.
   */
  protected async untilReady<T>(interest: "readable" | "writable", signal: AbortSignal | undefined, attempt: Attempt<T>, waitFirst = false): Promise<T> {
    if (!waitFirst) {
      const r = attemptOnce(attempt, this.fd);
      if (r !== AGAIN) return r;
    }
    // First behind the microtasks already queued (a sender in this process is often one of them),
    // then behind one event-loop turn; only then the reactor.
    for (const yieldOnce of YIELDS) {
      await yieldOnce();
      if (signal?.aborted) throw abortError(signal);
      const r = attemptOnce(attempt, this.fd);
      if (r !== AGAIN) return r;
    }
    for (;;) {
      const fd = this.fd;
      const r = attemptOnce(attempt, fd);
      if (r !== AGAIN) return r;
      await waitFor(fd, interest, signal);
      // An abort that lands between readiness and this turn still wins: nothing was consumed yet.
      if (signal?.aborted) throw abortError(signal);
    }
  }

  /**
   * Runs `attempt` now if `queue` is idle (settled promise unless it would block), otherwise — or after
   * AGAIN — in the queue, waiting for readiness between attempts.
   */
  protected schedule<T>(queue: OpQueue, interest: "readable" | "writable", signal: AbortSignal | undefined, attempt: Attempt<T>): Promise<T> {
    let waitFirst = false;
    if (queue.size === 0) {
      if (signal?.aborted) return Promise.reject(abortError(signal));
      try {
        const r = attemptOnce(attempt, this.fd);
        if (r !== AGAIN) return Promise.resolve(r);
        waitFirst = true;
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return queue.run(signal, () => this.untilReady(interest, signal, attempt, waitFirst));
  }

  #receiveAsync(maxFds: number, exact: boolean, opts: (RecvOptions & AsyncOptions) | undefined): Promise<ReceivedFds> {
    let signal: AbortSignal | undefined;
    let scratch: Uint8Array;
    try {
      checkMaxFds(maxFds, exact ? "n" : "maxFds");
      signal = signalOf(opts);
      scratch = this.#scratch(opts);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.schedule(this.recvQueue, "readable", signal, () => this.#tryReceiveFds(maxFds, exact, scratch));
  }

  #receiveIntoAsync(maxFds: number, exact: boolean, buffers: () => Uint8Array[], opts: AsyncOptions | undefined): Promise<ReceivedInto> {
    let signal: AbortSignal | undefined;
    let list: Uint8Array[];
    try {
      checkMaxFds(maxFds, exact ? "n" : "maxFds");
      list = buffers();
      signal = signalOf(opts);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.schedule(this.recvQueue, "readable", signal, () => {
      const fds = list.length === 1 ? this.receiveOne(maxFds, exact, list[0]!, K.MSG_DONTWAIT) : this.receive(maxFds, exact, list, K.MSG_DONTWAIT);
      return fds === WOULD_BLOCK_FDS ? AGAIN : new ReceivedInto(engine.bytesRead, fds);
    });
  }

  /**
   * Waits for a message like recvFds, then also takes every further message already queued, up to
   * `maxMessages` (default 64), without waiting again: one settled promise per batch instead of one per
   * message (each await after a syscall costs ≈ 0.3–0.5 µs here, bench/README.md). Each element is
   * what recvFds(maxFds) returns for that message; the batch ends early at a message with no bytes and
   * no fds (a stream's EOF, an empty datagram). An error on the first message rejects; an error on a later one ends the
   * batch before it and is thrown by this socket's next receive (sync, async, or cmsgRecvmsg on this object), so neither the
   * messages already taken nor the error is lost. The error is held by this socket object: close() and
   * intoFd() drop it (the message it reported was consumed and its fds closed either way).
   */
  recvFdsBatch(maxFds: number, opts?: BatchOptions): Promise<ReceivedFds[]> {
    let signal: AbortSignal | undefined;
    let scratch: Uint8Array;
    let max: number;
    try {
      checkMaxFds(maxFds);
      signal = signalOf(opts);
      scratch = this.#scratch(opts);
      max = maxMessagesOf(opts);
    } catch (e) {
      return Promise.reject(e);
    }
    const one = () => this.#tryReceiveFds(maxFds, false, scratch);
    return this.schedule(this.recvQueue, "readable", signal, () => {
      const first = one();
      if (first === AGAIN) return AGAIN;
      const batch = [first];
      // Nothing below can throw: a failing receive is caught and kept for the next one, so the
      // messages (and fds) already in `batch` always reach the caller.
      for (let last = first; batch.length < max && !isEmptyMessage(last); ) {
        let next: ReceivedFds | typeof AGAIN;
        try {
          next = one();
        } catch (e) {
          this.#deferredRecvError = e;
          break;
        }
        if (next === AGAIN) break;
        batch.push(next);
        last = next;
      }
      return batch;
    });
  }

  /** Async recvFdsSync: resolves when a message arrives. Concurrent receives complete in call order. */
  recvFds(maxFds: number, opts?: RecvOptions & AsyncOptions): Promise<ReceivedFds> {
    return this.#receiveAsync(maxFds, false, opts);
  }

  /** Async recvFdsExactSync. */
  recvFdsExact(n: number, opts?: RecvOptions & AsyncOptions): Promise<ReceivedFds> {
    return this.#receiveAsync(n, true, opts);
  }

  /** Async recvFdsIntoSync: your buffer is filled when the promise resolves (keep it untouched until then). */
  recvFdsInto(maxFds: number, buffer: ArrayBufferView | ArrayBuffer, opts?: AsyncOptions): Promise<ReceivedInto> {
    return this.#receiveIntoAsync(maxFds, false, () => [toWritable(buffer)], opts);
  }

  /** Async recvFdsExactIntoSync. */
  recvFdsExactInto(n: number, buffer: ArrayBufferView | ArrayBuffer, opts?: AsyncOptions): Promise<ReceivedInto> {
    return this.#receiveIntoAsync(n, true, () => [toWritable(buffer)], opts);
  }

  /** Async recvFdsVectoredSync. */
  recvFdsVectored(maxFds: number, buffers: readonly (ArrayBufferView | ArrayBuffer)[], opts?: AsyncOptions): Promise<ReceivedInto> {
    return this.#receiveIntoAsync(
      maxFds,
      false,
      () => {
        if (!Array.isArray(buffers)) throw invalidArgType("buffers", "an array of ArrayBufferViews", describe(buffers));
        return buffers.map((b, i) => toWritable(b, `buffers[${i}]`));
      },
      opts,
    );
  }

  /** Async sendFdsSync: one sendmsg once the socket is writable. Concurrent sends run in call order. */
  sendFds(data: Payload, fds?: readonly FdLike[], opts?: AsyncOptions): Promise<number> {
    let bytes: Uint8Array, list: readonly number[], signal: AbortSignal | undefined;
    try {
      bytes = toBytes(data);
      list = resolveFdList(checkFdList(fds));
      signal = signalOf(opts);
      this.checkPayload(viewByteLength(bytes), list.length);
    } catch (e) {
      return Promise.reject(e);
    }
    if (viewByteLength(bytes) === 0 && list.length === 0 && this.kind === Kind.Stream) return Promise.resolve(0);
    return this.#scheduleSend(signal, list, (held) => orAgain(engine.sendOne(this, this.#owned, bytes, held, K.MSG_DONTWAIT)));
  }

  /**
   * schedule() for a send of `numbers` (resolved at call time): the first attempt sends them as they
   * are; a send that has to wait (queued, or the socket full) holds duplicates from now until it
   * settles — sent, failed, aborted or the socket closed — so the file the caller named at call time
   * is the one delivered (holdFds).
   */
  #scheduleSend(signal: AbortSignal | undefined, numbers: readonly number[], attempt: (fds: readonly FdLike[]) => number | typeof AGAIN): Promise<number> {
    const queue = this.sendQueue;
    let waitFirst = false;
    let held: OwnedFd[];
    try {
      if (queue.size === 0) {
        if (signal?.aborted) throw abortError(signal);
        const r = attemptOnce(() => attempt(numbers), this.fd);
        if (r !== AGAIN) return Promise.resolve(r);
        waitFirst = true;
      }
      held = holdFds(numbers);
    } catch (e) {
      return Promise.reject(e);
    }
    const sent = queue.run(signal, () => this.untilReady("writable", signal, () => attempt(held), waitFirst));
    return held.length === 0 ? sent : closeWhenSettled(sent, held);
  }

  /** Async sendFdsVectoredSync. */
  sendFdsVectored(buffers: readonly Payload[], fds?: readonly FdLike[], opts?: AsyncOptions): Promise<number> {
    let list: Uint8Array[], fdList: readonly number[], signal: AbortSignal | undefined;
    let total = 0;
    try {
      list = toByteList(buffers, "buffers");
      fdList = resolveFdList(checkFdList(fds));
      signal = signalOf(opts);
      for (const b of list) total += viewByteLength(b);
      this.checkPayload(total, fdList.length);
    } catch (e) {
      return Promise.reject(e);
    }
    if (total === 0 && fdList.length === 0 && this.kind === Kind.Stream) return Promise.resolve(0);
    return this.#scheduleSend(signal, fdList, (held) => orAgain(engine.sendMany(this, this.#owned, list, held, K.MSG_DONTWAIT)));
  }
}

/** `p`, with `held` closed once it settles (whichever way). */
async function closeWhenSettled<T>(p: Promise<T>, held: OwnedFd[]): Promise<T> {
  try {
    return await p;
  } finally {
    closeAll(held);
  }
}

/**
 * A receive error that carries `bytesRead` (the engine sets it once recvmsg consumed a message) also
 * gets a copy of those bytes as `data`: the allocating receives' scratch buffer is reused by the next call.
 */
function withData(e: unknown, scratch: Uint8Array): unknown {
  // A deferred batch error already carries its own message's bytes (the scratch holds later ones now).
  if (e instanceof UnixAncillaryError && e.bytesRead !== undefined && e.data === undefined) e.data = scratch.slice(0, e.bytesRead);
  return e;
}

/** A message with no bytes and no fds: a stream's EOF (a batch stops there). */
function isEmptyMessage(m: ReceivedFds): boolean {
  return m.fds.length === 0 && viewByteLength(m.data) === 0;
}
