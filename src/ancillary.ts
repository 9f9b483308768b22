/**
 * SocketAncillary: control-message storage over a caller-provided Uint8Array at any byte offset, and the
 * low-level cmsgSendmsg / cmsgRecvmsg (docs/design.md, "Receive and send pipelines").
 *
 * Ownership contract:
 * - Send mode: addFds copies fd integers and remembers their sources; it never owns them. cmsgSendmsg
 *   refuses to send if an OwnedFd (or { fd } object) it was given has since been closed or now lends a
 *   different number — a stale number could name an unrelated file by then.
 * - Receive mode: cmsgRecvmsg first clears the buffer (closing unread fds, even if the receive then
 *   fails); the engine then owns every delivered fd, of every fd-carrying kind the registry knows
 *   (msg-io.ts adoptReceived), right after recvmsg. Those fds belong to the buffer until messages()
 *   hands them out; a message of an unknown kind is yielded as raw bytes, never as fds. Whatever nobody took is closed by clear(), by the next
 *   receive, by [Symbol.dispose], or by disposing/returning the Messages and ScmRights iterators.
 * - The parser never creates an OwnedFd from bytes it did not just receive from the kernel.
 */
import { abi } from "./platform/index.ts";
import { closeAll, fdOf, OwnedFd, ownedNumberOf, type FdLike } from "./owned-fd.ts";
import { engine, type ReceivedMessage } from "./msg-io.ts";
import { appendCredentials, appendRights } from "./cmsg/encode.ts";
import type { AncillaryMessage } from "./cmsg/kinds.ts";
import { ScmRights, type Drainable } from "./cmsg/scm-rights.ts";
import { bufferSizeForCredentials, bufferSizeForRights, describe } from "./cmsg/sizes.ts";
import { ScmCredentials } from "./credentials.ts";
import { invalidArgType, invalidArgValue, MESSAGES, UnixAncillaryError } from "./errors.ts";
import { checkFdList, toBytes, toWritable, UnixSocket, type Payload } from "./socket.ts";
import { isResizable, isSharedArrayBuffer, typedArrayName, viewBuffer, viewByteLength, viewByteOffset } from "./intrinsics.ts";

export { ScmRights };
export type { AncillaryMessage };

/**
 * Draining iterator over received messages. A yielded message's fds are the caller's (an ScmRights
 * iterator still holds the ones not taken from it: clear()/dispose closes those); return()/dispose
 * closes every fd of the messages not yielded.
 */
export class Messages implements IterableIterator<AncillaryMessage>, Disposable, Drainable {
  #items: ReceivedMessage[];
  #next = 0;
  #track: (d: Drainable) => void;
  /** @internal */
  constructor(items: ReceivedMessage[], track: (d: Drainable) => void) {
    this.#items = items;
    this.#track = track;
  }
  next(): IteratorResult<AncillaryMessage, undefined> {
    if (this.#next >= this.#items.length) return { value: undefined, done: true };
    const item = this.#items[this.#next]!;
    this.#items[this.#next++] = undefined as unknown as ReceivedMessage;
    const message = item.message;
    // an iterator over fds keeps what the caller does not take: the buffer closes it on clear()
    const fds = (message as { fds?: unknown }).fds;
    if (fds instanceof ScmRights) this.#track(fds);
    return { value: message, done: false };
  }
  return(): IteratorResult<AncillaryMessage, undefined> {
    this.closeRemaining();
    return { value: undefined, done: true };
  }
  closeRemaining(): void {
    while (this.#next < this.#items.length) {
      const item = this.#items[this.#next];
      this.#items[this.#next++] = undefined as unknown as ReceivedMessage;
      if (item !== undefined && item.fds.length > 0) closeAll(item.fds);
    }
  }
  [Symbol.iterator](): this {
    return this;
  }
  [Symbol.dispose](): void {
    this.closeRemaining();
  }
}

function bufferError(): UnixAncillaryError {
  return new UnixAncillaryError("ERR_UA_BUFFER", MESSAGES.ancillaryBuffer);
}

/**
 * A control-message buffer for the low-level cmsgSendmsg/cmsgRecvmsg, over memory you provide.
 * Sending: addFds/addCredentials stage messages; the fds you add stay yours. Receiving: after
 * cmsgRecvmsg it owns every fd the kernel delivered until you take them from `messages()`; clear()
 * and dispose close the rest.
 * @throws UnixAncillaryError ERR_UA_BUFFER when a message does not fit or the buffer was not cleared
 *   after a receive; ERR_UA_RECEIVE_BUFFER when a receive buffer is sent.
 */
export class SocketAncillary implements Disposable {
  /** The caller's object, returned by `buffer`; never read by the library. */
  readonly #caller: Uint8Array;
  /** A plain view over the same memory, located through the built-in getters: what every read and syscall uses. */
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #length = 0;
  #truncated = false;
  #receiveMode = false;
  /** Send mode: where each staged fd came from, and the number it lent when staged. */
  #sources: { source: FdLike; fd: number }[] = [];
  /** Receive mode: owned messages not yet drained. */
  #received: ReceivedMessage[] = [];
  /** Iterators handed out since the last receive; clear()/receive/dispose closes what they still hold. */
  #drainables: Drainable[] = [];

  /** Empty storage over any Uint8Array (any byte offset of its ArrayBuffer). Send mode, length 0. */
  constructor(buffer: Uint8Array) {
    // Brand check and the built-in getters: a subclass (or an own accessor) whose byteLength, byteOffset
    // or buffer points elsewhere must not decide which memory the kernel writes fds into, which memory
    // the parser adopts fds from, or hide a SharedArrayBuffer (src/intrinsics.ts).
    if (typedArrayName(buffer) !== "Uint8Array") throw invalidArgType("buffer", "a Uint8Array", describe(buffer));
    // The kernel writes control data into this memory and the parser then turns integers found there
    // into owned fds: it must be memory nobody else can change (no SharedArrayBuffer: another thread
    // could forge fd numbers between recvmsg and the parse) and whose size cannot change under us
    // (no resizable ArrayBuffer: the parser's view and the kernel's length would disagree).
    const backing = viewBuffer(buffer);
    if (isSharedArrayBuffer(backing)) {
      throw invalidArgValue("buffer", "must not be backed by a SharedArrayBuffer (another thread could change received fd numbers before they are owned)");
    }
    if (isResizable(backing)) throw invalidArgValue("buffer", "must not be backed by a resizable ArrayBuffer");
    const offset = viewByteOffset(buffer);
    const length = viewByteLength(buffer);
    this.#caller = buffer;
    this.#bytes = new Uint8Array(backing, offset, length);
    this.#view = new DataView(backing, offset, length);
  }

  /** Bytes one SCM_RIGHTS message with `numFds` fds occupies (CMSG_SPACE(4 * numFds)). Throws on overflow. */
  static bufferSizeForRights(numFds: number): number {
    return bufferSizeForRights(abi, numFds);
  }

  /** Bytes one SCM_CREDENTIALS message occupies (Linux: 32). */
  static bufferSizeForCredentials(): number {
    return bufferSizeForCredentials(abi);
  }

  /** The caller's storage. */
  get buffer(): Uint8Array {
    return this.#caller;
  }

  /** @internal The library's own view of the storage (what cmsgSendmsg / cmsgRecvmsg hand the kernel). */
  get _bytes(): Uint8Array {
    return this.#bytes;
  }

  /** Send mode: bytes of encoded messages. Receive mode: control bytes the kernel wrote. */
  get length(): number {
    return this.#length;
  }

  /** Whether the last receive reported MSG_CTRUNC. The fds that did arrive are still owned and cleaned up. */
  get truncated(): boolean {
    return this.#truncated;
  }

  /** True after a receive, until clear(). */
  get receiveMode(): boolean {
    return this.#receiveMode;
  }

  /**
   * Appends one SCM_RIGHTS message with `fds` (which stay yours and must stay open until the send).
   * `addFds([])` writes a header-only message. Throws ERR_UA_BUFFER if the buffer is too small or in
   * receive mode; then nothing is written or retained.
   */
  addFds(fds: readonly FdLike[]): void {
    const list = checkFdList(fds);
    // Resolve every fd first ({ fd } getters are user code and may use this buffer), then check the
    // mode and write: nothing a getter did can be half-overwritten.
    const n = list.length;
    const sources: FdLike[] = new Array(n);
    const numbers: number[] = new Array(n);
    for (let i = 0; i < n; i++) numbers[i] = fdOf((sources[i] = list[i]!), `fds[${i}]`);
    if (this.#receiveMode) throw bufferError();
    const end = appendRights(abi, this.#bytes, this.#view, this.#length, numbers);
    if (end < 0) throw bufferError();
    this.#length = end;
    for (let i = 0; i < n; i++) this.#sources.push({ source: sources[i]!, fd: numbers[i]! });
  }

  /** Appends one SCM_CREDENTIALS message (Linux). The kernel checks the claim when you send. */
  addCredentials(credentials: ScmCredentials): void {
    if (!(credentials instanceof ScmCredentials)) throw invalidArgType("credentials", "an ScmCredentials", describe(credentials));
    bufferSizeForCredentials(abi); // throws ERR_UA_UNSUPPORTED where SCM_CREDENTIALS does not exist
    // Read the fields first (a subclass's getters are user code), then check the mode and write.
    const { pid, uid, gid } = credentials;
    new ScmCredentials(pid, uid, gid); // re-validates what a subclass's getters returned (plain integers in range)
    if (this.#receiveMode) throw bufferError();
    const end = appendCredentials(abi, this.#bytes, this.#view, this.#length, pid, uid, gid);
    if (end < 0) throw bufferError();
    this.#length = end;
  }

  /**
   * Drains the received messages: the first call yields each message once, later calls yield nothing. A
   * send buffer yields nothing. Dispose the iterator (or `break` out of for..of) to close what you skip.
   */
  messages(): Messages {
    const items = this.#received;
    this.#received = [];
    const m = new Messages(items, (d) => this.#drainables.push(d));
    this.#drainables.push(m);
    return m;
  }

  /** Closes unread received fds, forgets staged send fds, resets length and truncated, returns to send mode. */
  clear(): void {
    this.#closeUnread();
    this.#sources = [];
    this.#length = 0;
    this.#truncated = false;
    this.#receiveMode = false;
  }

  #closeUnread(): void {
    const received = this.#received;
    this.#received = [];
    for (const item of received) if (item.fds.length > 0) closeAll(item.fds);
    const drainables = this.#drainables;
    this.#drainables = [];
    for (const d of drainables) d.closeRemaining();
  }

  /** Receive buffer: closes unread fds. Send buffer: closes nothing (the fds are the caller's). */
  [Symbol.dispose](): void {
    this.clear();
  }

  // ---- used by cmsgSendmsg / cmsgRecvmsg ----

  /** @internal Throws if this buffer cannot be sent as is. Returns the encoded length. */
  _checkSendable(): number {
    if (this.#receiveMode) throw new UnixAncillaryError("ERR_UA_RECEIVE_BUFFER", MESSAGES.receiveBufferSend);
    const sources = this.#sources;
    for (let i = 0; i < sources.length; i++) {
      const { source, fd } = sources[i]!;
      if (typeof source === "number") continue;
      let now: number | null = null;
      try {
        now = source instanceof OwnedFd ? (source.closed ? null : source.fd) : (source as { fd: number }).fd;
      } catch {
        now = null;
      }
      if (now !== fd) {
        throw new UnixAncillaryError(
          "ERR_UA_STALE_FD",
          `fd ${fd} was added to this send buffer but has since been ${now === null ? "closed" : `replaced by fd ${now}`}; rebuild the buffer`,
        );
      }
    }
    // The getters above are user code: they may have received into this buffer or rebuilt it.
    if (this.#receiveMode) throw new UnixAncillaryError("ERR_UA_RECEIVE_BUFFER", MESSAGES.receiveBufferSend);
    if (this.#sources !== sources) throw new UnixAncillaryError("ERR_UA_STALE_FD", "the send buffer was cleared while its fds were being checked; rebuild it");
    return this.#length;
  }

  /** @internal Clears, enters receive mode (even if the receive then fails). */
  _beginReceive(): void {
    this.clear();
    this.#receiveMode = true;
  }

  /** @internal The view over exactly the caller's storage (taken once, at construction). */
  get _view(): DataView {
    return this.#view;
  }

  /** @internal Stores what a receive delivered: the control length and the owned messages. */
  _setReceived(length: number, truncated: boolean, records: ReceivedMessage[]): void {
    this.#length = length;
    this.#truncated = truncated;
    this.#received = records;
  }
}

/** A socket object (UnixStream, ...) or anything else that lends an fd. */
export type SocketLike = FdLike;

/** Result of cmsgRecvmsg. */
export interface RecvResult {
  /** Bytes written into the buffers. */
  readonly bytesRead: number;
  /** MSG_CTRUNC: control data did not fit (the kernel closed what was cut off). */
  readonly truncated: boolean;
  /** MSG_TRUNC: the datagram payload did not fit the buffers (streams never set it). */
  readonly dataTruncated: boolean;
}

function toPayloadList(buffers: unknown): Uint8Array[] {
  if (!Array.isArray(buffers)) throw invalidArgType("buffers", "an array of buffers", describe(buffers));
  return buffers.map((b, i) => toBytes(b as Payload, `buffers[${i}]`));
}

/**
 * One sendmsg with `buffers` and the ancillary buffer's encoded control messages (attached only when
 * its length > 0). No empty-payload rule at this level. Returns bytes accepted.
 */
export function cmsgSendmsg(sock: SocketLike, buffers: readonly Payload[], ancillary: SocketAncillary): number {
  if (!(ancillary instanceof SocketAncillary)) throw invalidArgType("ancillary", "a SocketAncillary", describe(ancillary));
  const fd = fdOf(sock, "sock");
  const list = toPayloadList(buffers);
  const length = ancillary._checkSendable();
  if (abi.maxSendControlBytes !== null && length > abi.maxSendControlBytes) {
    // musl's sendmsg would fail with a bare ENOMEM; say what is wrong instead.
    throw new UnixAncillaryError(
      "ERR_UA_TOO_MANY_FDS",
      `${length} bytes of control data exceed what ${abi.libc} libc's sendmsg accepts (${abi.maxSendControlBytes}, i.e. ${abi.maxFdsPerSend} fds); split the fds across several messages`,
    );
  }
  // The OwnedFd behind a socket object, or the OwnedFd itself: per-socket state is keyed on it
  // (msg-io.ts, SO_NOSIGPIPE on Apple), checked against its private number there.
  const owner = ownedNumberOf(sock) >= 0 ? (sock as OwnedFd) : UnixSocket._ownedOf(sock);
  return engine.sendControl(owner, fd, list, length > 0 ? ancillary._bytes : null, length, 0);
}

/**
 * One recvmsg into `buffers`, using the whole ancillary buffer as control space. Truncation is reported,
 * not thrown: inspect `truncated` / `dataTruncated`. Received fds wait in the buffer for messages().
 */
export function cmsgRecvmsg(sock: SocketLike, buffers: readonly (ArrayBufferView | ArrayBuffer)[], ancillary: SocketAncillary): RecvResult {
  if (!(ancillary instanceof SocketAncillary)) throw invalidArgType("ancillary", "a SocketAncillary", describe(ancillary));
  const fd = fdOf(sock, "sock");
  if (!Array.isArray(buffers)) throw invalidArgType("buffers", "an array of buffers", describe(buffers));
  const list = buffers.map((b, i) => toWritable(b, `buffers[${i}]`));
  // A socket object's deferred batch error (recvFdsBatch) comes before any later message.
  if (sock instanceof UnixSocket) sock._throwDeferredReceiveError();
  ancillary._beginReceive();
  const records: ReceivedMessage[] = [];
  const controlLength = engine.receiveControl(fd, list, ancillary._bytes, ancillary._view, 0, records);
  const { bytesRead, truncated, dataTruncated } = engine.last;
  ancillary._setReceived(controlLength, truncated, records);
  return { bytesRead, truncated, dataTruncated };
}
