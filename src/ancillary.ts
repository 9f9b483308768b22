/**
 * SocketAncillary: control-message storage over a caller-provided Uint8Array at any byte offset, and the
 * low-level cmsgSendmsg / cmsgRecvmsg (crate spec §1.1, §1.5).
 *
 * Ownership contract:
 * - Send mode: addFds copies fd integers and remembers their sources; it never owns them. cmsgSendmsg
 *   refuses to send if an OwnedFd (or { fd } object) it was given has since been closed or now lends a
 *   different number — a stale number could name an unrelated file by then.
 * - Receive mode: cmsgRecvmsg first clears the buffer (closing unread fds, even if the receive then
 *   fails), then wraps every delivered fd in an OwnedFd right after recvmsg. Those fds belong to the
 *   buffer until messages() hands them out. Whatever nobody took is closed by clear(), by the next
 *   receive, by [Symbol.dispose], or by disposing/returning the Messages and ScmRights iterators.
 * - The parser never creates an OwnedFd from bytes it did not just receive from the kernel.
 */
import { abi } from "./platform/index.ts";
import { adopt, fdOf, OwnedFd, type FdLike } from "./owned-fd.ts";
import { engine, finishCloexec } from "./msg-io.ts";
import { appendCredentials, appendRights } from "./cmsg/encode.ts";
import { CmsgCursor } from "./cmsg/parse.ts";
import { bufferSizeForCredentials, bufferSizeForRights, describe } from "./cmsg/sizes.ts";
import { ScmCredentials } from "./credentials.ts";
import { invalidArgType, invalidArgValue, MESSAGES, UnixAncillaryError } from "./errors.ts";
import { checkFdList, toBytes, toWritable, type Payload } from "./socket.ts";

/** One received control message. Unknown kinds may be added in later versions: keep a default branch. */
export type AncillaryMessage =
  | { readonly type: "rights"; readonly fds: ScmRights }
  | { readonly type: "credentials"; readonly credentials: ScmCredentials };

type Stored = { type: "rights"; fds: OwnedFd[] } | { type: "credentials"; credentials: ScmCredentials };

/** Something that holds received fds not yet handed out; closing it closes them. */
interface Drainable {
  closeRemaining(): void;
}

/** Iterator over the fds of one SCM_RIGHTS message. Each OwnedFd is yielded once; return()/dispose closes the rest. */
export class ScmRights implements IterableIterator<OwnedFd>, Disposable, Drainable {
  #fds: OwnedFd[];
  #next = 0;
  /** @internal */
  constructor(fds: OwnedFd[]) {
    this.#fds = fds;
  }
  /** How many fds are left to yield (the crate's exact size_hint). */
  get remaining(): number {
    return this.#fds.length - this.#next;
  }
  next(): IteratorResult<OwnedFd, undefined> {
    if (this.#next < this.#fds.length) {
      const fd = this.#fds[this.#next]!;
      this.#fds[this.#next++] = undefined as unknown as OwnedFd;
      return { value: fd, done: false };
    }
    return { value: undefined, done: true };
  }
  /** Called by `break` in for..of: closes every fd not yet yielded. */
  return(): IteratorResult<OwnedFd, undefined> {
    this.closeRemaining();
    return { value: undefined, done: true };
  }
  closeRemaining(): void {
    while (this.#next < this.#fds.length) {
      const fd = this.#fds[this.#next];
      this.#fds[this.#next++] = undefined as unknown as OwnedFd;
      fd?.close();
    }
  }
  [Symbol.iterator](): this {
    return this;
  }
  [Symbol.dispose](): void {
    this.closeRemaining();
  }
}

/** Draining iterator over received messages. return()/dispose closes every fd of messages not yielded. */
export class Messages implements IterableIterator<AncillaryMessage>, Disposable, Drainable {
  #items: Stored[];
  #next = 0;
  #track: (d: Drainable) => void;
  /** @internal */
  constructor(items: Stored[], track: (d: Drainable) => void) {
    this.#items = items;
    this.#track = track;
  }
  next(): IteratorResult<AncillaryMessage, undefined> {
    if (this.#next >= this.#items.length) return { value: undefined, done: true };
    const item = this.#items[this.#next]!;
    this.#items[this.#next++] = undefined as unknown as Stored;
    if (item.type === "rights") {
      const rights = new ScmRights(item.fds);
      this.#track(rights);
      return { value: { type: "rights", fds: rights }, done: false };
    }
    return { value: { type: "credentials", credentials: item.credentials }, done: false };
  }
  return(): IteratorResult<AncillaryMessage, undefined> {
    this.closeRemaining();
    return { value: undefined, done: true };
  }
  closeRemaining(): void {
    while (this.#next < this.#items.length) {
      const item = this.#items[this.#next];
      this.#items[this.#next++] = undefined as unknown as Stored;
      if (item?.type === "rights") for (const fd of item.fds) fd.close();
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
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #length = 0;
  #truncated = false;
  #receiveMode = false;
  /** Send mode: where each staged fd came from, and the number it lent when staged. */
  #sources: { source: FdLike; fd: number }[] = [];
  /** Receive mode: owned messages not yet drained. */
  #received: Stored[] = [];
  /** Iterators handed out since the last receive; clear()/receive/dispose closes what they still hold. */
  #drainables: Drainable[] = [];
  readonly #cursor = new CmsgCursor(abi);

  /** Empty storage over any Uint8Array (any byte offset of its ArrayBuffer). Send mode, length 0. */
  constructor(buffer: Uint8Array) {
    if (!(buffer instanceof Uint8Array)) throw invalidArgType("buffer", "a Uint8Array", describe(buffer));
    // The kernel writes control data into this memory and the parser then turns integers found there
    // into owned fds: it must be memory nobody else can change (no SharedArrayBuffer: another thread
    // could forge fd numbers between recvmsg and the parse) and whose size cannot change under us
    // (no resizable ArrayBuffer: the parser's view and the kernel's length would disagree).
    const backing = buffer.buffer as ArrayBuffer & { resizable?: boolean };
    if (typeof SharedArrayBuffer !== "undefined" && (backing as unknown) instanceof SharedArrayBuffer) {
      throw invalidArgValue("buffer", "must not be backed by a SharedArrayBuffer (another thread could change received fd numbers before they are owned)");
    }
    if (backing.resizable === true) throw invalidArgValue("buffer", "must not be backed by a resizable ArrayBuffer");
    this.#bytes = buffer;
    this.#view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
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
    if (this.#receiveMode) throw bufferError();
    const numbers = list.map((f, i) => fdOf(f, `fds[${i}]`));
    const end = appendRights(abi, this.#bytes, this.#view, this.#length, numbers);
    if (end < 0) throw bufferError();
    this.#length = end;
    for (let i = 0; i < list.length; i++) this.#sources.push({ source: list[i]!, fd: numbers[i]! });
  }

  /** Appends one SCM_CREDENTIALS message (Linux). The kernel checks the claim when you send. */
  addCredentials(credentials: ScmCredentials): void {
    if (!(credentials instanceof ScmCredentials)) throw invalidArgType("credentials", "an ScmCredentials", describe(credentials));
    bufferSizeForCredentials(abi); // throws ERR_UA_UNSUPPORTED where SCM_CREDENTIALS does not exist
    if (this.#receiveMode) throw bufferError();
    const end = appendCredentials(abi, this.#bytes, this.#view, this.#length, credentials.pid, credentials.uid, credentials.gid);
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
    for (const item of received) if (item.type === "rights") for (const fd of item.fds) fd.close();
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
    for (const { source, fd } of this.#sources) {
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
    return this.#length;
  }

  /** @internal Clears, enters receive mode (even if the receive then fails). */
  _beginReceive(): void {
    this.clear();
    this.#receiveMode = true;
  }

  /** @internal Takes ownership of the fds in the first `length` bytes the kernel just wrote. */
  _takeReceived(length: number, truncated: boolean): void {
    this.#length = length;
    this.#truncated = truncated;
    const items: Stored[] = [];
    const all: OwnedFd[] = [];
    const c = this.#cursor.reset(this.#view, 0, length);
    while (c.next()) {
      if (c.isRights()) {
        const fds: OwnedFd[] = [];
        for (let i = 0; i < c.fdSlots; i++) {
          const fd = c.fdAt(i);
          if (fd >= 0) {
            const owned = adopt(fd);
            fds.push(owned);
            all.push(owned);
          }
        }
        items.push({ type: "rights", fds });
      } else if (c.isCredentials()) {
        const { pid, uid, gid } = c.credentials();
        items.push({ type: "credentials", credentials: new ScmCredentials(pid, uid, gid) });
      }
    }
    this.#received = items;
    try {
      finishCloexec(all);
    } catch (e) {
      this.#closeUnread();
      throw e;
    }
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
  return engine.sendControl(fd, list, length > 0 ? ancillary.buffer : null, length, 0);
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
  ancillary._beginReceive();
  const controlLength = engine.receiveControl(fd, list, ancillary.buffer, 0);
  const { bytesRead, truncated, dataTruncated } = engine.last;
  ancillary._takeReceived(controlLength, truncated);
  return { bytesRead, truncated, dataTruncated };
}
