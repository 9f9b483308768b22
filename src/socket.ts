/**
 * Unix socket classes: UnixStream, UnixDatagram, UnixSeqpacket and their listeners.
 *
 * Ownership contract: each socket owns one OwnedFd (created here, or moved in by fromFd) and closes it
 * exactly once on close()/dispose. Fds passed to send methods are borrowed for the duration of the call
 * and stay the caller's. Fds returned by receive methods are the caller's OwnedFds; every fd a receive
 * does not return (surplus, truncated batch, count mismatch) is closed before the method returns or
 * throws (see msg-io.ts).
 *
 * Stream caveat (every stream method): Unix streams do not preserve send boundaries. One receive may
 * return bytes and fds from several sends or part of one; fds ride on the first byte of the send that
 * carried them. recvFdsExact checks the fd count of one receive; it does not read a whole frame.
 */
import { K, abi } from "./platform/index.ts";
import { adopt, closeAll, OwnedFd, type FdLike } from "./owned-fd.ts";
import { engine, Kind, WOULD_BLOCK, WOULD_BLOCK_FDS } from "./msg-io.ts";
import * as sys from "./sys.ts";
import { closedError, invalidArgType, MESSAGES, outOfRange, SystemError, UnixAncillaryError } from "./errors.ts";
import { describe } from "./cmsg/sizes.ts";
import { lstatSync } from "node:fs";
import { OpQueue, abortError } from "./async/queue.ts";
import { forget, waitFor } from "./async/reactor.ts";

/** Default data buffers of the allocating receives (crate: DEFAULT_STREAM_BUF / DEFAULT_DATAGRAM_BUF). */
export const DEFAULT_STREAM_BUFFER = 4096;
/** Data buffer of the allocating receives on datagram and seqpacket sockets (bytes). */
export const DEFAULT_DATAGRAM_BUFFER = 65536;
/** Largest maxFds a receive accepts (the crate's HARD_CEILING). */
export const MAX_RECEIVE_FDS = 1 << 20;

const encoder = new TextEncoder();
let streamScratch: Uint8Array | null = null;
let messageScratch: Uint8Array | null = null;

/** Payload accepted by sends: bytes (any ArrayBufferView or ArrayBuffer) or a string (sent as UTF-8). */
export type Payload = ArrayBufferView | ArrayBuffer | string;

export function toBytes(data: unknown, name = "data"): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (typeof data === "string") return encoder.encode(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer || data instanceof SharedArrayBuffer) return new Uint8Array(data);
  throw invalidArgType(name, "a string, an ArrayBuffer or an ArrayBufferView", describe(data));
}

function toByteList(buffers: unknown, name: string): Uint8Array[] {
  if (!Array.isArray(buffers)) throw invalidArgType(name, "an array of ArrayBufferViews", describe(buffers));
  return buffers.map((b, i) => toBytes(b, `${name}[${i}]`));
}

/** A buffer that receives write into (strings are not accepted: receives need memory to fill). */
export function toWritable(buffer: unknown, name = "buffer"): Uint8Array {
  if (buffer instanceof Uint8Array) return buffer;
  if (ArrayBuffer.isView(buffer)) return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  if (buffer instanceof ArrayBuffer) return new Uint8Array(buffer);
  throw invalidArgType(name, "an ArrayBuffer or an ArrayBufferView", describe(buffer));
}

export function checkFdList(fds: unknown, name = "fds"): readonly FdLike[] {
  if (fds === undefined) return EMPTY_FDS;
  if (!Array.isArray(fds)) throw invalidArgType(name, "an array of fds (numbers, OwnedFd or { fd })", describe(fds));
  return fds as FdLike[];
}
const EMPTY_FDS: readonly FdLike[] = Object.freeze([]);

export function checkMaxFds(n: unknown, name = "maxFds"): number {
  if (typeof n !== "number" || !Number.isInteger(n)) throw invalidArgType(name, "an integer", describe(n));
  if (n < 0 || n > MAX_RECEIVE_FDS) throw outOfRange(name, `>= 0 and <= ${MAX_RECEIVE_FDS}`, String(n));
  return n;
}

/** Result of the allocating receives: the payload and the fds, disposable as a unit. */
export class ReceivedFds implements Disposable {
  // `declare`: plain constructor stores, no class-field initializer on the receive hot path.
  /** Payload bytes actually received. */
  declare readonly data: Uint8Array;
  /** The received fds, owned by the caller. */
  declare readonly fds: OwnedFd[];
  constructor(data: Uint8Array, fds: OwnedFd[]) {
    this.data = data;
    this.fds = fds;
  }
  /** Closes every fd still held in `fds` (fds the caller closed or released are skipped). */
  [Symbol.dispose](): void {
    closeAll(this.fds);
  }
}

/** Result of the bring-your-own-buffer receives: bytes written into the caller's buffer(s) and the fds. */
export class ReceivedInto implements Disposable {
  declare readonly bytesRead: number;
  declare readonly fds: OwnedFd[];
  constructor(bytesRead: number, fds: OwnedFd[]) {
    this.bytesRead = bytesRead;
    this.fds = fds;
  }
  [Symbol.dispose](): void {
    closeAll(this.fds);
  }
}

/** Options of the receives: data buffer size and an AbortSignal (async only). */
export interface RecvOptions {
  /** Size of the data buffer the allocating receives use (default 4096 for streams, 65536 otherwise). */
  bufferSize?: number;
}

/** Options of every async operation. */
export interface AsyncOptions {
  /** Cancels the operation: it rejects with ERR_UA_ABORTED (the signal's reason as `cause`). */
  signal?: AbortSignal;
}

const EAGAIN = abi.errno.EAGAIN;
function isWouldBlock(e: unknown): boolean {
  return e instanceof SystemError && e.errno === EAGAIN; // EWOULDBLOCK == EAGAIN on every supported ABI
}

function signalOf(opts: AsyncOptions | undefined): AbortSignal | undefined {
  if (opts === undefined) return undefined;
  if (opts === null || typeof opts !== "object") throw invalidArgType("options", "an object", describe(opts));
  const s = opts.signal;
  if (s !== undefined && !(s instanceof AbortSignal)) throw invalidArgType("options.signal", "an AbortSignal", describe(s));
  return s;
}

type SocketType = "stream" | "datagram" | "seqpacket";
const TYPE_NUMBER: Record<SocketType, number> = { stream: K.SOCK_STREAM, datagram: K.SOCK_DGRAM, seqpacket: K.SOCK_SEQPACKET };

function checkSocketType(owned: OwnedFd, type: SocketType, what: string): void {
  if (!(owned instanceof OwnedFd)) throw invalidArgType("fd", "an OwnedFd", describe(owned));
  const actual = sys.getsockoptInt(owned.fd, K.SOL_SOCKET, K.SO_TYPE);
  if (actual !== TYPE_NUMBER[type]) {
    const e = new TypeError(`${what}.fromFd: fd ${owned.fd} is not a ${type} socket (SO_TYPE ${actual})`);
    (e as TypeError & { code: string }).code = "ERR_INVALID_ARG_VALUE";
    throw e;
  }
}

function requireSeqpacket(): void {
  if (!abi.hasSeqpacket) throw new UnixAncillaryError("ERR_UA_UNSUPPORTED", `AF_UNIX SOCK_SEQPACKET is not supported on ${abi.os}`);
}

/** Behaviour shared by every connected Unix socket. */
export abstract class UnixSocket implements Disposable {
  // The socket may share this object with whoever passed it to fromFd(): if they close or release it,
  // the socket is closed too. So the number is always read from it, never cached here.
  #owned: OwnedFd;
  #recvQueue: OpQueue | null = null;
  #sendQueue: OpQueue | null = null;
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

  /** Closes the socket. Idempotent. */
  close(): void {
    const fd = this.#owned._numberOrMinusOne;
    if (fd < 0) return;
    this.onClose(fd);
    engine.forget(fd);
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
    this.onClose(fd);
    engine.forget(fd);
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
    this.checkPayload(bytes.byteLength, list.length);
    if (bytes.byteLength === 0 && list.length === 0 && this.kind === Kind.Stream) return 0;
    // The engine resolves the list first — that may run user code ({ fd } getters) — and only then
    // reads our fd and takes the payload's address (see Engine.stageRights).
    return engine.sendOne(this, bytes, list, 0);
  }

  /** One sendmsg gathering `buffers` in order, with `fds` attached. No "all" variant: finish a partial send yourself without resending fds. */
  sendFdsVectoredSync(buffers: readonly Payload[], fds?: readonly FdLike[]): number {
    const list = toByteList(buffers, "buffers");
    const fdList = checkFdList(fds);
    void this.fd; // a closed socket fails before anything else
    let total = 0;
    for (const b of list) total += b.byteLength;
    this.checkPayload(total, fdList.length);
    if (total === 0 && fdList.length === 0 && this.kind === Kind.Stream) return 0;
    const control = engine.stageRights(fdList); // first: see sendFdsSync
    return engine.send(this.fd, list, control, 0);
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
      if (opts.bufferSize !== undefined) {
        if (!Number.isInteger(opts.bufferSize) || opts.bufferSize < 1 || opts.bufferSize > 1 << 30) {
          throw outOfRange("options.bufferSize", ">= 1 and <= 2^30", String(opts.bufferSize));
        }
        size = opts.bufferSize;
      }
    }
    if (size === DEFAULT_STREAM_BUFFER) return (streamScratch ??= new Uint8Array(DEFAULT_STREAM_BUFFER));
    if (size === DEFAULT_DATAGRAM_BUFFER) return (messageScratch ??= new Uint8Array(DEFAULT_DATAGRAM_BUFFER));
    return new Uint8Array(size);
  }

  protected receive(maxFds: number, exact: boolean, buffers: readonly Uint8Array[], extraFlags: number): OwnedFd[] {
    return engine.receiveFds(this.fd, buffers, maxFds, exact, this.kind, extraFlags);
  }

  protected receiveOne(maxFds: number, exact: boolean, buffer: Uint8Array, extraFlags: number): OwnedFd[] {
    return engine.receiveOne(this.fd, buffer, maxFds, exact, this.kind, extraFlags);
  }

  /**
   * Receives up to `maxFds` fds and the payload of one recvmsg (data copied out of an internal buffer
   * of 4096 bytes for streams, 65536 otherwise). Surplus fds are closed. Stream EOF returns 0 bytes.
   */
  recvFdsSync(maxFds: number, opts?: RecvOptions): ReceivedFds {
    checkMaxFds(maxFds);
    const scratch = this.#scratch(opts);
    const fds = this.receiveOne(maxFds, false, scratch, 0);
    return new ReceivedFds(scratch.slice(0, engine.bytesRead), fds);
  }

  /** Like recvFdsSync but requires exactly `n` fds in this one receive; otherwise closes them all and throws ERR_UA_FD_COUNT_MISMATCH. */
  recvFdsExactSync(n: number, opts?: RecvOptions): ReceivedFds {
    checkMaxFds(n, "n");
    const scratch = this.#scratch(opts);
    const fds = this.receiveOne(n, true, scratch, 0);
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

  /** One attempt at a scalar receive without blocking: AGAIN if nothing is there yet. */
  #tryReceive(maxFds: number, exact: boolean, buffer: Uint8Array): OwnedFd[] | typeof AGAIN {
    const fds = this.receiveOne(maxFds, exact, buffer, K.MSG_DONTWAIT);
    return fds === WOULD_BLOCK_FDS ? AGAIN : fds;
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
    return this.schedule(this.recvQueue, "readable", signal, () => {
      const fds = this.#tryReceive(maxFds, exact, scratch);
      return fds === AGAIN ? AGAIN : new ReceivedFds(scratch.slice(0, engine.bytesRead), fds);
    });
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
    let bytes: Uint8Array, list: readonly FdLike[], signal: AbortSignal | undefined;
    try {
      bytes = toBytes(data);
      list = checkFdList(fds);
      signal = signalOf(opts);
      this.checkPayload(bytes.byteLength, list.length);
    } catch (e) {
      return Promise.reject(e);
    }
    if (bytes.byteLength === 0 && list.length === 0 && this.kind === Kind.Stream) return Promise.resolve(0);
    return this.schedule(this.sendQueue, "writable", signal, () => {
      return orAgain(engine.sendOne(this, bytes, list, K.MSG_DONTWAIT));
    });
  }

  /** Async sendFdsVectoredSync. */
  sendFdsVectored(buffers: readonly Payload[], fds?: readonly FdLike[], opts?: AsyncOptions): Promise<number> {
    let list: Uint8Array[], fdList: readonly FdLike[], signal: AbortSignal | undefined;
    let total = 0;
    try {
      list = toByteList(buffers, "buffers");
      fdList = checkFdList(fds);
      signal = signalOf(opts);
      for (const b of list) total += b.byteLength;
      this.checkPayload(total, fdList.length);
    } catch (e) {
      return Promise.reject(e);
    }
    if (total === 0 && fdList.length === 0 && this.kind === Kind.Stream) return Promise.resolve(0);
    return this.schedule(this.sendQueue, "writable", signal, () => {
      const control = engine.stageRights(fdList); // first: see sendFdsSync
      return orAgain(engine.send(this.fd, list, control, K.MSG_DONTWAIT));
    });
  }
}


// ---------------------------------------------------------------------------------------------------

/** "dev:ino" of the file at `path` (not following a symlink), or null if there is none. */
function socketFileId(path: string): string | null {
  try {
    const st = lstatSync(path, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

/** A new AF_UNIX socket of `type` once `setup(fd)` succeeded (connect, bind); closed if setup throws. */
function socketWith(type: number, setup: (fd: number) => void): OwnedFd {
  const owned = adopt(sys.socket(K.AF_UNIX, type));
  try {
    setup(owned.fd);
  } catch (e) {
    owned.close();
    throw e;
  }
  return owned;
}

/** Both ends of a new socketpair, owned. */
function ownedPair(type: number): [OwnedFd, OwnedFd] {
  const [a, b] = sys.socketpair(type);
  return [adopt(a), adopt(b)];
}

/**
 * A connected SOCK_STREAM Unix socket that sends and receives fds (SCM_RIGHTS) with its data. It owns
 * its fd; fds you send stay yours, fds you receive are OwnedFds. Create with pair(), connect(),
 * a listener's accept(), or fromFd(). A stream send of fds needs at least one data byte.
 * @throws SystemError from the syscalls; UnixAncillaryError (ERR_UA_*) as the README's table says
 */
export class UnixStream extends UnixSocket {
  protected readonly kind = Kind.Stream;
  protected readonly label = "UnixStream";

  protected constructor(owned: OwnedFd) {
    super(owned);
  }

  /** A connected pair (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC)). */
  static pair(): [UnixStream, UnixStream] {
    const [a, b] = ownedPair(K.SOCK_STREAM);
    return [new UnixStream(a), new UnixStream(b)];
  }

  /** Takes ownership of an OwnedFd holding a connected AF_UNIX stream socket. */
  static fromFd(fd: OwnedFd): UnixStream {
    checkSocketType(fd, "stream", "UnixStream");
    return new UnixStream(fd);
  }

  /** Connects to a listening socket at `path` ("\0name" for Linux's abstract namespace). Blocks. */
  static connectSync(path: string): UnixStream {
    return new UnixStream(socketWith(K.SOCK_STREAM, (fd) => sys.connect(fd, path)));
  }

  /** @internal */
  static _wrap(owned: OwnedFd): UnixStream {
    return new UnixStream(owned);
  }

  /** Async connectSync: never blocks the event loop, even when the listener's backlog is full. */
  static async connect(path: string, opts?: AsyncOptions): Promise<UnixStream> {
    return new UnixStream(await connectAsync(K.SOCK_STREAM, path, signalOf(opts)));
  }

  /**
   * Async sendFdsAllSync: fds go exactly once, with the first accepted bytes. If the operation is
   * aborted or fails after that first send, the fds and a prefix of the data have been delivered; the
   * error's `bytesSent` says how much. Do not retry the whole send then.
   */
  sendFdsAll(data: Payload, fds?: readonly FdLike[], opts?: AsyncOptions): Promise<void> {
    let bytes: Uint8Array, list: readonly FdLike[], signal: AbortSignal | undefined;
    try {
      bytes = toBytes(data);
      list = checkFdList(fds);
      signal = signalOf(opts);
      this.checkPayload(bytes.byteLength, list.length);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.sendQueue.run(signal, async () => {
      let sent = 0;
      try {
        if (list.length > 0) {
          sent = await this.untilReady("writable", signal, () => {
            return orAgain(engine.sendOne(this, bytes, list, K.MSG_DONTWAIT));
          });
          if (sent === 0) throw new UnixAncillaryError("ERR_UA_WRITE_ZERO", MESSAGES.writeZeroFirst);
        }
        while (sent < bytes.byteLength) {
          const n = await this.untilReady("writable", signal, (sock) => orAgain(engine.sendRange(sock, bytes, sent, K.MSG_DONTWAIT)));
          if (n === 0) throw new UnixAncillaryError("ERR_UA_WRITE_ZERO", MESSAGES.writeZeroShort);
          sent += n;
        }
      } catch (e) {
        if (e !== null && typeof e === "object") (e as { bytesSent?: number }).bytesSent = sent;
        throw e;
      }
    });
  }

  /**
   * Sends all of `data`, with `fds` attached exactly once to the first sendmsg; the rest follows in
   * control-less sendmsg calls (MSG_NOSIGNAL, never write(2)). On error a prefix and the fds may already
   * be delivered: do not retry the whole send.
   */
  sendFdsAllSync(data: Payload, fds?: readonly FdLike[]): void {
    const bytes = toBytes(data);
    const list = checkFdList(fds);
    void this.fd; // a closed socket fails before anything else
    this.checkPayload(bytes.byteLength, list.length);
    let sent = 0;
    if (list.length > 0) {
      sent = engine.sendOne(this, bytes, list, 0); // reads our fd after resolving the list
      if (sent === 0) throw new UnixAncillaryError("ERR_UA_WRITE_ZERO", MESSAGES.writeZeroFirst);
    }
    while (sent < bytes.byteLength) {
      const n = engine.sendRange(this.fd, bytes, sent, 0);
      if (n === 0) throw new UnixAncillaryError("ERR_UA_WRITE_ZERO", MESSAGES.writeZeroShort);
      sent += n;
    }
  }
}

/** A SOCK_DGRAM Unix socket; fd passing needs it connected (connectSync, or pair()). Owns its fd. */
export class UnixDatagram extends UnixSocket {
  protected readonly kind = Kind.Message;
  protected readonly label = "UnixDatagram";

  protected constructor(owned: OwnedFd) {
    super(owned);
  }

  static pair(): [UnixDatagram, UnixDatagram] {
    const [a, b] = ownedPair(K.SOCK_DGRAM);
    return [new UnixDatagram(a), new UnixDatagram(b)];
  }

  static fromFd(fd: OwnedFd): UnixDatagram {
    checkSocketType(fd, "datagram", "UnixDatagram");
    return new UnixDatagram(fd);
  }

  /** An unconnected datagram socket bound to `path`. Connect it (connectSync) before sending fds. */
  static bindSync(path: string): UnixDatagram {
    return new UnixDatagram(socketWith(K.SOCK_DGRAM, (fd) => sys.bind(fd, path)));
  }

  /** A new datagram socket connected to `path`. */
  static connectSync(path: string): UnixDatagram {
    return new UnixDatagram(socketWith(K.SOCK_DGRAM, (fd) => sys.connect(fd, path)));
  }

  /** Connects this socket (e.g. one from bindSync) to `path`; returns this. */
  connectSync(path: string): this {
    sys.connect(this.fd, path);
    return this;
  }

  /** Async: a new datagram socket connected to `path`. */
  static async connect(path: string, opts?: AsyncOptions): Promise<UnixDatagram> {
    return new UnixDatagram(await connectAsync(K.SOCK_DGRAM, path, signalOf(opts)));
  }

  /** Async bindSync (binding never blocks; provided for symmetry). */
  static override async bind(path: string): Promise<UnixDatagram> {
    return UnixDatagram.bindSync(path);
  }
}

/** A connected SOCK_SEQPACKET Unix socket (Linux, FreeBSD): message boundaries kept, fds with each message. Owns its fd. */
export class UnixSeqpacket extends UnixSocket {
  protected readonly kind = Kind.Message;
  protected readonly label = "UnixSeqpacket";

  protected constructor(owned: OwnedFd) {
    super(owned);
  }

  static pair(): [UnixSeqpacket, UnixSeqpacket] {
    requireSeqpacket();
    const [a, b] = ownedPair(K.SOCK_SEQPACKET);
    return [new UnixSeqpacket(a), new UnixSeqpacket(b)];
  }

  static fromFd(fd: OwnedFd): UnixSeqpacket {
    checkSocketType(fd, "seqpacket", "UnixSeqpacket");
    return new UnixSeqpacket(fd);
  }

  static connectSync(path: string): UnixSeqpacket {
    requireSeqpacket();
    return new UnixSeqpacket(socketWith(K.SOCK_SEQPACKET, (fd) => sys.connect(fd, path)));
  }

  /** @internal */
  static _wrap(owned: OwnedFd): UnixSeqpacket {
    return new UnixSeqpacket(owned);
  }

  /** Async connectSync. */
  static async connect(path: string, opts?: AsyncOptions): Promise<UnixSeqpacket> {
    requireSeqpacket();
    return new UnixSeqpacket(await connectAsync(K.SOCK_SEQPACKET, path, signalOf(opts)));
  }
}

// ---------------------------------------------------------------------------------------------------

/** Options of the listeners' bind: socket file mode (applied before listen()), backlog, unlinkOnClose. */
export interface BindOptions {
  /** File mode for the socket file (e.g. 0o600), applied between bind() and listen(), so no client can connect before it holds. */
  mode?: number;
  /** listen() backlog (default 511). */
  backlog?: number;
  /** Remove the socket file when the listener closes (default true for filesystem paths). */
  unlinkOnClose?: boolean;
}

abstract class Listener<S> implements Disposable {
  #owned: OwnedFd;
  #path: string | null;
  #unlink: boolean;
  /** dev:ino of the socket file we created: close() removes the file only if it is still ours. */
  #fileId: string | null;
  protected abstract readonly label: string;

  protected constructor(owned: OwnedFd, path: string | null, unlink: boolean, fileId: string | null = null) {
    this.#owned = owned;
    this.#path = path;
    this.#unlink = unlink;
    this.#fileId = fileId;
  }

  protected static bindFd(type: number, path: string, opts: BindOptions | undefined, nonblocking = false): { owned: OwnedFd; unlink: boolean; fileId: string | null } {
    if (opts !== undefined && (opts === null || typeof opts !== "object")) throw invalidArgType("options", "an object", describe(opts));
    const mode = opts?.mode;
    if (mode !== undefined && typeof mode !== "number") throw invalidArgType("options.mode", "an integer in 0..0o7777 (a number such as 0o600, not a string)", describe(mode));
    if (mode !== undefined && (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)) throw outOfRange("options.mode", "an integer in 0..0o7777", String(mode));
    const backlog = opts?.backlog ?? 511;
    if (!Number.isInteger(backlog) || backlog < 1) throw outOfRange("options.backlog", "a positive integer", String(backlog));
    if (typeof path !== "string") throw invalidArgType("path", "a string", describe(path));
    const abstract = path.startsWith("\0");
    const owned = adopt(sys.socket(K.AF_UNIX, type, nonblocking));
    let fileId: string | null = null;
    try {
      sys.bind(owned.fd, path);
      if (!abstract) fileId = socketFileId(path);
      if (mode !== undefined && !abstract) sys.chmodPath(path, mode);
      sys.listen(owned.fd, backlog);
    } catch (e) {
      owned.close();
      // bind() created the socket file: don't leave it behind to make the next bind fail with EADDRINUSE.
      if (fileId !== null && socketFileId(path) === fileId) sys.unlinkPath(path);
      throw e;
    }
    return { owned, unlink: (opts?.unlinkOnClose ?? true) && !abstract, fileId };
  }

  get fd(): number {
    if (this.#owned.closed) throw closedError(this.label);
    return this.#owned.fd;
  }

  get closed(): boolean {
    return this.#owned.closed;
  }

  /** The bound path ("\0name" for abstract addresses), or null for a listener made from an fd. */
  get path(): string | null {
    return this.#path;
  }

  protected abstract wrap(owned: OwnedFd): S;

  /**
   * Accepts one connection, blocking the thread until one arrives. On a listener that you made
   * non-blocking yourself, EAGAIN is thrown as usual; on one the library made non-blocking (bind(),
   * or after accept()), it still blocks.
   */
  acceptSync(): S {
    for (;;) {
      const fd = this.fd;
      try {
        return this.wrap(adopt(sys.accept(fd)));
      } catch (e) {
        if (!isWouldBlock(e) || !this.#nonblocking) throw e;
      }
      sys.pollOne(fd, K.POLLIN, -1);
    }
  }

  #acceptQueue: OpQueue | null = null;

  /**
   * Accepts one connection without blocking the event loop. Concurrent accepts are served in call
   * order. The accepted socket is blocking for the sync API; its async methods never block.
   */
  accept(opts?: AsyncOptions): Promise<S> {
    let signal: AbortSignal | undefined;
    try {
      signal = signalOf(opts);
    } catch (e) {
      return Promise.reject(e);
    }
    const queue = (this.#acceptQueue ??= new OpQueue());
    return queue.run(signal, async () => {
      for (;;) {
        const fd = this.fd;
        if (!this.#nonblocking) {
          // A listener from bindSync/fromFd blocks in accept(); make it non-blocking once (acceptSync copes).
          sys.setNonblocking(fd, true);
          this.#nonblocking = true;
        }
        try {
          return this.wrap(adopt(sys.accept(fd)));
        } catch (e) {
          if (!isWouldBlock(e)) throw e;
        }
        await waitFor(fd, "readable", signal);
      }
    });
  }

  /** True when the library itself set O_NONBLOCK (so acceptSync keeps its blocking contract). */
  #nonblocking = false;
  /** @internal */
  protected markNonblocking(): void {
    this.#nonblocking = true;
  }

  /** `for await (const conn of listener)`: accepts until the listener is closed (then ends quietly). */
  async *[Symbol.asyncIterator](): AsyncGenerator<S, void, undefined> {
    for (;;) {
      if (this.closed) return;
      try {
        yield await this.accept();
      } catch (e) {
        if (e instanceof UnixAncillaryError && e.code === "ERR_UA_CLOSED") return;
        throw e;
      }
    }
  }

  protected onClose(fd: number): void {
    forget(fd);
  }

  close(): void {
    if (this.#owned.closed) return;
    this.onClose(this.#owned.fd);
    this.#owned.close();
    if (this.#unlink && this.#path !== null && this.#fileId !== null) {
      try {
        // Another listener may have bound the same path since (after someone removed our file):
        // its file has another dev:ino and stays.
        if (socketFileId(this.#path) === this.#fileId) sys.unlinkPath(this.#path);
      } catch {
        // the file may already be gone; closing must not throw
      }
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** A listening SOCK_STREAM Unix socket; accepts UnixStreams. Owns its fd and (unless unlinkOnClose: false) removes its socket file on close(). */
export class UnixListener extends Listener<UnixStream> {
  protected readonly label = "UnixListener";
  protected constructor(owned: OwnedFd, path: string | null, unlink: boolean, fileId: string | null = null) {
    super(owned, path, unlink, fileId);
  }

  /** Binds and listens on `path`. With `mode`, the file mode is set before listen(). */
  static bindSync(path: string, opts?: BindOptions): UnixListener {
    const { owned, unlink, fileId } = Listener.bindFd(K.SOCK_STREAM, path, opts);
    return new UnixListener(owned, path, unlink, fileId);
  }

  /** Like bindSync, with a non-blocking listening socket ready for accept() and `for await`. */
  static override async bind(path: string, opts?: BindOptions): Promise<UnixListener> {
    const { owned, unlink, fileId } = Listener.bindFd(K.SOCK_STREAM, path, opts, true);
    const l = new UnixListener(owned, path, unlink, fileId);
    l.markNonblocking();
    return l;
  }

  /** Takes ownership of a listening AF_UNIX stream socket. */
  static fromFd(fd: OwnedFd): UnixListener {
    checkSocketType(fd, "stream", "UnixListener");
    return new UnixListener(fd, null, false);
  }

  protected wrap(owned: OwnedFd): UnixStream {
    return UnixStream._wrap(owned);
  }
}

/** A listening SOCK_SEQPACKET Unix socket (Linux, FreeBSD); accepts UnixSeqpackets. Owns its fd and socket file like UnixListener. */
export class UnixSeqpacketListener extends Listener<UnixSeqpacket> {
  protected readonly label = "UnixSeqpacketListener";
  protected constructor(owned: OwnedFd, path: string | null, unlink: boolean, fileId: string | null = null) {
    super(owned, path, unlink, fileId);
  }

  static bindSync(path: string, opts?: BindOptions): UnixSeqpacketListener {
    requireSeqpacket();
    const { owned, unlink, fileId } = Listener.bindFd(K.SOCK_SEQPACKET, path, opts);
    return new UnixSeqpacketListener(owned, path, unlink, fileId);
  }

  static override async bind(path: string, opts?: BindOptions): Promise<UnixSeqpacketListener> {
    requireSeqpacket();
    const { owned, unlink, fileId } = Listener.bindFd(K.SOCK_SEQPACKET, path, opts, true);
    const l = new UnixSeqpacketListener(owned, path, unlink, fileId);
    l.markNonblocking();
    return l;
  }

  static fromFd(fd: OwnedFd): UnixSeqpacketListener {
    checkSocketType(fd, "seqpacket", "UnixSeqpacketListener");
    return new UnixSeqpacketListener(fd, null, false);
  }

  protected wrap(owned: OwnedFd): UnixSeqpacket {
    return UnixSeqpacket._wrap(owned);
  }
}

/**
 * Connects a new socket without blocking the event loop. An AF_UNIX connect to a listener whose backlog
 * is full fails with EAGAIN instead of waiting; readiness cannot signal "backlog has room", so that case
 * retries with a short backoff (1 ms doubling to 50 ms) until it connects, fails otherwise, or is aborted.
 * The returned socket is blocking again, so the sync API works on it too.
 */
async function connectAsync(type: number, path: string, signal: AbortSignal | undefined): Promise<OwnedFd> {
  if (signal?.aborted) throw abortError(signal);
  const owned = adopt(sys.socket(K.AF_UNIX, type, true));
  try {
    let delay = 1;
    for (;;) {
      try {
        sys.connect(owned.fd, path);
        break;
      } catch (e) {
        if (e instanceof SystemError && (e.code === "EINPROGRESS" || e.code === "EALREADY")) {
          await waitFor(owned.fd, "writable", signal);
          const err = sys.getsockoptInt(owned.fd, K.SOL_SOCKET, K.SO_ERROR);
          if (err !== 0) throw new SystemError("connect", err, path);
          break;
        }
        if (!isWouldBlock(e)) throw e;
      }
      await sleep(delay, signal);
      delay = Math.min(delay * 2, 50);
    }
    sys.setNonblocking(owned.fd, false);
    return owned;
  } catch (e) {
    forget(owned.fd);
    owned.close();
    throw e;
  }
}

/** Resolves after the event loop has run once more (timers, I/O callbacks, other tasks). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Resolves after the microtasks queued so far have run. */
function afterMicrotasks(): Promise<void> {
  return Promise.resolve();
}

const YIELDS: readonly (() => Promise<void>)[] = [afterMicrotasks, nextTurn];

/** An async operation's non-blocking attempt: its result, or AGAIN when the socket is not ready. */
const AGAIN: unique symbol = Symbol("unix-ancillary.again");
type Attempt<T> = (fd: number) => T | typeof AGAIN;

/** A send count from a MSG_DONTWAIT engine call, with WOULD_BLOCK mapped to AGAIN. */
function orAgain(n: number): number | typeof AGAIN {
  return n === WOULD_BLOCK ? AGAIN : n;
}

/** Runs one attempt; an EAGAIN that still arrives as an exception (not from the engine) counts as AGAIN. */
function attemptOnce<T>(attempt: Attempt<T>, fd: number): T | typeof AGAIN {
  try {
    return attempt(fd);
  } catch (e) {
    if (isWouldBlock(e)) return AGAIN;
    throw e;
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError(signal!));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
