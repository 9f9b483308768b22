/**
 * The sendmsg/recvmsg core shared by every socket class and by the low-level API.
 *
 * Ownership contract:
 * - Sent fds stay the caller's: they are copied as integers into the control buffer right before the
 *   syscall and nothing here closes them.
 * - Received fds become OwnedFds in exactly one function, adoptReceived(), called on fresh kernel output
 *   right after every successful recvmsg and before any fallible step (CLOEXEC fallback, truncation and
 *   count checks). It owns every fd of every kind the registry (cmsg/kinds.ts) marks as fd-carrying —
 *   SCM_RIGHTS and any other — and never turns an unknown kind into fds. Every path after that either
 *   returns them to the caller or closes them before it returns or throws.
 * - A failed recvmsg (EAGAIN, EBADF, ...) delivered no fds, so there is nothing to close.
 *
 * Buffers: one engine per thread owns the msghdr, iovec and control buffers and keeps them reachable
 * for as long as raw pointers to them exist (docs/design.md, "Pointers and buffers": memory reachable only through an address
 * written into another buffer can be reused). The receive and send sides use separate buffers. Every
 * msghdr is a MsgBlock: the scalar methods (one payload buffer) run entirely in one per side — msghdr,
 * iovec and control region in one ArrayBuffer; the vectored and low-level calls aim a second one at a
 * growable iovec array and the control bytes. The hot path allocates nothing but its results (the OwnedFds, the fds array, the
 * result object, and the payload copy of the allocating receives).
 *
 * User code inside a send (an `{ fd }` getter, a socket subclass's `fd`) may send again; that send
 * gets a Sender of its own, so the send that called it keeps the fds it resolved (Engine.#sending).
 * Every length and offset of a caller buffer is read through the built-in getters (intrinsics.ts).
 */
import { ptr, type Pointer } from "bun:ffi";
import { abi, K } from "./platform/index.ts";
import { errno, libc } from "./platform/libc.ts";
import { CmsgCursor } from "./cmsg/parse.ts";
import { kindsOf, unknownMessage, type AncillaryMessage, type CmsgKind } from "./cmsg/kinds.ts";
import { bufferSizeForRights, cmsgLen, cmsgSpace, receiveControlSize } from "./cmsg/sizes.ts";
import { storeWords } from "./cmsg/fields.ts";
import { MsgBlock } from "./msg-block.ts";
import { viewByteLength } from "./intrinsics.ts";
import { adopt, adoptSlots, closeAll, fdAt, ownedNumberOf, type FdLike, type OwnedFd } from "./owned-fd.ts";
import { MESSAGES, SystemError, UnixAncillaryError } from "./errors.ts";
import { isOpen, nofileSoftLimit, setCloexec, setsockoptInt } from "./sys.ts";

const EINTR = abi.errno.EINTR;
const EAGAIN = abi.errno.EAGAIN; // == EWOULDBLOCK on every supported ABI

/**
 * What the send methods return, and the receive methods' WOULD_BLOCK_FDS, when the caller passed
 * MSG_DONTWAIT and the socket had no room / no data (EAGAIN). Only the library's async attempts pass
 * MSG_DONTWAIT, and they check for these; every other EAGAIN is thrown as a SystemError.
 */
export const WOULD_BLOCK = -1;
export const WOULD_BLOCK_FDS: OwnedFd[] = Object.freeze([]) as unknown as OwnedFd[];
// Direct references: a call through the 40-entry symbols object costs a property lookup per call.
const { sendmsg: libcSendmsg, recvmsg: libcRecvmsg } = libc;
const M = abi.msghdr;
const IOV = abi.iovec;
const SEND_FLAGS = abi.sigpipe === "msg_nosignal" ? K.MSG_NOSIGNAL : 0;
const NOSIGPIPE_OPTION = abi.sigpipe === "so_nosigpipe";
const NATIVE_CLOEXEC = abi.cloexec === "msg_cmsg_cloexec";
const CTRUNC_OR_TRUNC = K.MSG_CTRUNC | K.MSG_TRUNC;
// Word indexes into the receive msghdr and control buffer (every field sits at a 4-aligned offset on
// every supported ABI; abi.ts tables). Hoisted so the receive path reads plain numbers.
const CONTROLLEN_W = M.controllen.offset >> 2;
const CONTROLLEN_WIDE = M.controllen.size === 8;
const FLAGS_W = M.flags.offset >> 2;
const CMSG_LEN_W = abi.cmsg.len.offset >> 2;
const CMSG_LEN_WIDE = abi.cmsg.len.size === 8;
const CMSG_LEVEL_W = abi.cmsg.level.offset >> 2;
const CMSG_TYPE_W = abi.cmsg.type.offset >> 2;
const CMSG_HEADER_LEN = abi.cmsg.headerLen;
const CMSG_HEADER_SIZE = abi.cmsg.headerSize;
const CMSG_DATA_W = abi.cmsg.headerLen >> 2;
const CMSG_ALIGN_MASK = abi.cmsg.align - 1;
/** Whether an odd number of 4-byte fd slots is followed by a padding word (8-byte cmsg alignment). */
const ODD_COUNT_PADS = abi.cmsg.align === 8;
/** maxFds up to this use the precomputed control size (-1 where the budget follows RLIMIT_NOFILE). */
const FIXED_BUDGET = abi.fdBudget.kind === "fixed" ? abi.fdBudget.fds : -1;
const RECV_FLAGS = NATIVE_CLOEXEC ? K.MSG_CMSG_CLOEXEC : 0;

/** Socket kinds as the receive pipeline sees them: streams ignore MSG_TRUNC, message sockets reject it. */
export const enum Kind {
  Stream = 0,
  Message = 1,
}

/** The per-receive fd budget: 253 on Linux/BSD; clamp(RLIMIT_NOFILE soft, 253, 2^20) on darwin, queried per receive. */
export function receiveBudget(): number {
  const b = abi.fdBudget;
  return b.kind === "fixed" ? b.fds : clampNofile(nofileSoftLimit(), b.floor, b.ceiling);
}

/** The rlimit budget's clamp (receiveBudget), exported for the unit test of the crate's clamp table. */
export function clampNofile(soft: number | null, floor = 253, ceiling = 1 << 20): number {
  if (soft === null || !Number.isSafeInteger(soft)) return ceiling;
  return Math.min(Math.max(soft, floor), ceiling);
}

function tooManyFds(n: number): UnixAncillaryError {
  const why =
    abi.maxSendControlBytes !== null
      ? `${abi.libc} libc's sendmsg refuses more than ${abi.maxSendControlBytes} bytes of control data`
      : `the kernel's limit is ${abi.maxFdsPerSend} per message (SCM_MAX_FD)`;
  return new UnixAncillaryError(
    "ERR_UA_TOO_MANY_FDS",
    `cannot send ${n} file descriptors in one message on ${abi.name}: ${why}; split them across several messages`,
  );
}

/** A growable array of iovec structs (the vectored and low-level calls' msg_iov). */
class IovecArray {
  words: Int32Array;
  address: number;
  constructor(capacity: number) {
    this.words = new Int32Array((IOV.size * capacity) >> 2);
    this.address = ptr(this.words);
  }
  get capacity(): number {
    return (this.words.length << 2) / IOV.size;
  }
  ensure(n: number): void {
    if (n <= this.capacity) return;
    this.words = new Int32Array((IOV.size * Math.max(n, this.capacity * 2)) >> 2);
    this.address = ptr(this.words);
  }

  /**
   * Points iovec i at `buf` (a zero-length buffer gets a null base: ptr() rejects empty views). The
   * address is taken fresh every call and used by the syscall right after, with no user code in
   * between.
   */
  set(i: number, buf: Uint8Array): void {
    const at = i * IOV.size;
    const len = viewByteLength(buf); // the built-in getter: see src/intrinsics.ts
    storeWords(this.words, at, IOV.base, len > 0 ? ptr(buf) : 0);
    storeWords(this.words, at, IOV.len, len);
  }
}

export interface RecvOutcome {
  bytesRead: number;
  /** MSG_CTRUNC: control data was truncated (the kernel closed what did not fit). */
  truncated: boolean;
  /** MSG_TRUNC: the payload did not fit (datagram/seqpacket). */
  dataTruncated: boolean;
}

/**
 * The send side's buffers (msghdr + iovec + control block, general header, iovec array) and the
 * steps of every send. One Sender serves one send at a time; see Engine.#sendWith for reentrancy.
 */
class Sender {
  /** The scalar send path's msghdr + iovec + control region; its control region also serves sendMany(). */
  readonly #block = new MsgBlock(bufferSizeForRights(abi, abi.maxFdsPerSend));
  /** The vectored and low-level sends' msghdr, aimed at the iovec array and any control region. */
  readonly #hdr = new MsgBlock(0);
  readonly #iov = new IovecArray(4);
  /** The fd count the SCM_RIGHTS header in the send control region currently describes, and its CMSG_SPACE. */
  #stagedCount = -1;
  #stagedSpace = 0;

  /**
   * Step 1 of every send with fds: writes one SCM_RIGHTS message for `fds` at the start of the
   * control region and returns its CMSG_SPACE (0 for null: no control data at all; an empty list
   * gives a header-only message). This is where user code can run (an `{ fd }` getter): the fd
   * numbers are resolved straight into this Sender's slots, which no other send touches meanwhile
   * (a send made from the getter gets its own Sender). Callers stage FIRST and only then read the
   * socket's number and take payload addresses: a getter that moves or detaches the payload's
   * storage, or closes the socket, then changes nothing already taken. Throws for a closed OwnedFd
   * or a non-fd, before any syscall. The header and tail padding are rewritten only when the count
   * changes — every other byte of the message is one of the slots just written.
   */
  /**
   * For an EBADF from sendmsg of `header`: the staged fd numbers that are not open, or null when that
   * message was not this Sender's block (other paths say less).
   */
  closedStagedFds(header: Pointer): number[] | null {
    const blk = this.#block;
    if (header !== blk.address) return null;
    const out: number[] = [];
    const first = blk.controlWord + CMSG_DATA_W;
    for (let i = 0; i < this.#stagedCount; i++) if (!isOpen(blk.i32[first + i]!)) out.push(blk.i32[first + i]!);
    return out;
  }

  #stageRights(fds: readonly FdLike[] | null): number {
    if (fds === null) return 0;
    const n = fds.length; // read once: a getter that grows the list changes nothing
    if (n > abi.maxFdsPerSend) throw tooManyFds(n);
    const blk = this.#block;
    const I = blk.i32;
    const first = blk.controlWord + CMSG_DATA_W;
    for (let i = 0; i < n; i++) I[first + i] = fdAt(fds, i, "fds");
    // An odd count leaves a padding word after the last slot (8-byte cmsg alignment); a staging that
    // threw part-way through a longer list may have written an fd number there. Keep it zero.
    if (ODD_COUNT_PADS && (n & 1) === 1) I[first + n] = 0;
    return n === this.#stagedCount ? this.#stagedSpace : this.#restage(n);
  }

  /** Rewrites the SCM_RIGHTS header and tail padding for a new fd count (out of line: the hot path reuses them). */
  #restage(n: number): number {
    const blk = this.#block;
    const I = blk.i32;
    const at = blk.controlWord;
    const space = cmsgSpace(abi, n * 4);
    // The header words other than len/level/type (glibc's high half of cmsg_len, musl's pad) were
    // zeroed at construction and are never written.
    I[at + CMSG_LEN_W] = cmsgLen(abi, n * 4);
    I[at + CMSG_LEVEL_W] = K.SOL_SOCKET;
    I[at + CMSG_TYPE_W] = K.SCM_RIGHTS;
    for (let w = at + CMSG_DATA_W + n, end = at + (space >> 2); w < end; w++) I[w] = 0;
    this.#stagedCount = n;
    this.#stagedSpace = space;
    return space;
  }

  /** One sendmsg of a single buffer with `fds` (the scalar methods), entirely in the block. */
  sendOne(socket: { readonly fd: number }, owner: OwnedFd, data: Uint8Array, fds: readonly FdLike[] | null, extraFlags: number): number {
    const control = this.#stageRights(fds);
    const sock = socket.fd; // after the fd getters (see #stageRights)
    const blk = this.#block;
    blk.setBuffer(data);
    blk.setControl(control);
    if (NOSIGPIPE_OPTION) noSigpipe(owner, sock);
    const r = sendmsg(sock, blk.address, SEND_FLAGS | extraFlags);
    keepAlive(data);
    return r;
  }

  /** One sendmsg gathering `buffers` with `fds` (the vectored methods). */
  sendMany(socket: { readonly fd: number }, owner: OwnedFd, buffers: readonly Uint8Array[], fds: readonly FdLike[] | null, extraFlags: number): number {
    const control = this.#stageRights(fds);
    const sock = socket.fd; // after the fd getters (see #stageRights)
    const nb = this.#aim(buffers);
    const r = this.#sendmsg(owner, sock, nb, control > 0 ? this.#block.address + this.#block.controlOffset : 0, control, extraFlags);
    keepAlive(buffers);
    return r;
  }

  /** sendmsg of data[start..] with no control data (the tail of sendFdsAll; `owner`: the socket's OwnedFd). */
  sendRange(owner: OwnedFd, sock: number, data: Uint8Array, start: number, extraFlags: number): number {
    const blk = this.#block;
    blk.setRange(data, start);
    blk.setControl(0);
    const r = this.#sendmsgAt(owner, sock, blk.address, extraFlags);
    keepAlive(data);
    return r;
  }

  /** sendmsg with caller-encoded control bytes (the low-level cmsgSendmsg). */
  sendControl(owner: OwnedFd | null, sock: number, buffers: readonly Uint8Array[], control: Uint8Array | null, controlLen: number, extraFlags: number): number {
    const nb = this.#aim(buffers);
    const address = control !== null && controlLen > 0 ? ptr(control) : 0;
    const r = this.#sendmsg(owner, sock, nb, address, controlLen, extraFlags);
    keepAlive(buffers, control);
    return r;
  }

  /** Points the iovec array at `buffers` (engine-made plain views: no user code runs here). */
  #aim(buffers: readonly Uint8Array[]): number {
    const iov = this.#iov;
    const nb = buffers.length;
    iov.ensure(nb);
    for (let i = 0; i < nb; i++) iov.set(i, buffers[i]!);
    return nb;
  }

  /** sendmsg through the general header (caller iovec list). */
  #sendmsg(owner: OwnedFd | null, sock: number, iovlen: number, control: number, controllen: number, extraFlags: number): number {
    const h = this.#hdr;
    h.aim(this.#iov.address, iovlen, control, controllen);
    return this.#sendmsgAt(owner, sock, h.address, extraFlags);
  }

  /** sendmsg(2) of a prepared msghdr, EINTR retried; errno is read right after the failing call. */
  #sendmsgAt(owner: OwnedFd | null, sock: number, header: Pointer, extraFlags: number): number {
    if (NOSIGPIPE_OPTION) noSigpipe(owner, sock);
    return sendmsg(sock, header, SEND_FLAGS | extraFlags);
  }
}

/**
 * Apple has no MSG_NOSIGNAL: a socket needs SO_NOSIGPIPE before its first send, and the option sticks
 * to the socket. It is remembered per OwnedFd, never per number, and only while that OwnedFd is open
 * and owns exactly the number being sent on (read from its private slot): an open OwnedFd's number
 * cannot be reused, while a bare number can be closed and reused by code the library never sees, and
 * a socket subclass's `fd` getter may name another socket. Every other send sets the option first.
 */
const nosigpipeDone = new WeakSet<OwnedFd>();

function noSigpipe(owner: OwnedFd | null, sock: number): void {
  const owns = owner !== null && ownedNumberOf(owner) === sock;
  if (owns && nosigpipeDone.has(owner)) return;
  setsockoptInt(sock, K.SOL_SOCKET, K.SO_NOSIGPIPE, 1);
  if (owns) nosigpipeDone.add(owner);
}

/** One per thread: the preallocated buffers of every send and receive. */
class Engine {
  // ---- send side ----
  /**
   * The thread's Sender, and whether a send is using it. User code runs inside a send (an `{ fd }`
   * getter, a socket subclass's `fd`); a send it makes — on this socket or another — must not write
   * into the buffers of the send that called it (it would change which fds that one delivers), so it
   * gets a Sender of its own (allocated: reentrancy is rare and never on the hot path).
   */
  readonly #sender = new Sender();

  /** See Sender.closedStagedFds (the thread's main Sender; a nested send's own Sender says less). */
  closedStagedFds(header: Pointer): number[] | null {
    return this.#sender.closedStagedFds(header);
  }
  #sending = false;

  /**
   * One sendmsg of `data` with one SCM_RIGHTS message for `fds` (null: no control data). Resolves the
   * fd list first (user code may run), then reads `socket.fd`, then takes the payload's address.
   */
  sendOne(socket: { readonly fd: number }, owner: OwnedFd, data: Uint8Array, fds: readonly FdLike[] | null, extraFlags: number): number {
    if (this.#sending) return new Sender().sendOne(socket, owner, data, fds, extraFlags);
    this.#sending = true;
    try {
      return this.#sender.sendOne(socket, owner, data, fds, extraFlags);
    } finally {
      this.#sending = false;
    }
  }

  /** sendOne() gathering several buffers (the vectored sends). */
  sendMany(socket: { readonly fd: number }, owner: OwnedFd, buffers: readonly Uint8Array[], fds: readonly FdLike[] | null, extraFlags: number): number {
    if (this.#sending) return new Sender().sendMany(socket, owner, buffers, fds, extraFlags);
    this.#sending = true;
    try {
      return this.#sender.sendMany(socket, owner, buffers, fds, extraFlags);
    } finally {
      this.#sending = false;
    }
  }

  /** sendmsg of data[start..] with no control data (the tail of sendFdsAll on `owner`). Runs no user code. */
  sendRange(owner: OwnedFd, sock: number, data: Uint8Array, start: number, extraFlags: number): number {
    if (this.#sending) return new Sender().sendRange(owner, sock, data, start, extraFlags);
    this.#sending = true;
    try {
      return this.#sender.sendRange(owner, sock, data, start, extraFlags);
    } finally {
      this.#sending = false;
    }
  }

  /** sendmsg with caller-encoded control bytes (the low-level cmsgSendmsg). Runs no user code. */
  sendControl(owner: OwnedFd | null, sock: number, buffers: readonly Uint8Array[], control: Uint8Array | null, controlLen: number, extraFlags: number): number {
    if (this.#sending) return new Sender().sendControl(owner, sock, buffers, control, controlLen, extraFlags);
    this.#sending = true;
    try {
      return this.#sender.sendControl(owner, sock, buffers, control, controlLen, extraFlags);
    } finally {
      this.#sending = false;
    }
  }

  // ---- receive side ----
  /** The scalar receive path's msghdr + iovec + control region (sized for the fixed budget). */
  readonly #recvBlock = new MsgBlock(FIXED_BUDGET >= 0 ? receiveControlSize(abi, 0, FIXED_BUDGET) : 8);
  /** Bytes of the block's control region the kernel may have written since it was last zeroed. */
  #blockDirty = 0;
  /** The vectored and low-level receives' msghdr, aimed at the iovec array and a control buffer. */
  readonly #recvHdr = new MsgBlock(0);
  readonly #recvIov = new IovecArray(4);
  #recvCtl: Uint8Array;
  #recvCtlView: DataView;
  #recvCtlI32: Int32Array;
  #recvCtlPtr: number;
  /** Bytes of the receive control buffer the kernel may have written since it was last zeroed. */
  #recvCtlDirty = 0;
  /** receiveControlSize for maxFds <= a fixed budget: the same for every call. */
  readonly #fixedControlSize = abi.fdBudget.kind === "fixed" ? receiveControlSize(abi, 0, abi.fdBudget.fds) : -1;

  /** Outcome of the last receive (reused object: read it before the next receive). */
  readonly last: RecvOutcome = { bytesRead: 0, truncated: false, dataTruncated: false };

  constructor() {
    this.#recvBlock.setControl(this.#recvBlock.controlSize);
    this.#recvCtl = new Uint8Array(receiveControlSize(abi, 0, abi.fdBudget.kind === "fixed" ? abi.fdBudget.fds : abi.fdBudget.floor));
    this.#recvCtlView = new DataView(this.#recvCtl.buffer);
    this.#recvCtlI32 = new Int32Array(this.#recvCtl.buffer);
    this.#recvCtlPtr = ptr(this.#recvCtl);
  }

  // ------------------------------------------------------------------------------------------------
  // Receiving
  // ------------------------------------------------------------------------------------------------

  #growRecvControl(size: number): void {
    this.#recvCtlDirty = 0; // a fresh buffer is zero
    this.#recvCtl = new Uint8Array(size);
    this.#recvCtlView = new DataView(this.#recvCtl.buffer);
    this.#recvCtlI32 = new Int32Array(this.#recvCtl.buffer);
    this.#recvCtlPtr = ptr(this.#recvCtl);
  }

  /**
   * The high-level receive pipeline (docs/design.md, "Receive and send pipelines"). Returns the kept fds (at most maxFds, or exactly
   * maxFds when `exact`); closes everything else before returning or throwing. `bytesRead` holds the
   * payload length afterwards.
   */
  receiveFds(sock: number, buffers: readonly Uint8Array[], maxFds: number, exact: boolean, kind: Kind, extraFlags: number): OwnedFd[] {
    const iov = this.#recvIov;
    const nb = buffers.length;
    iov.ensure(nb);
    for (let i = 0; i < nb; i++) iov.set(i, buffers[i]!);
    const fds = this.#receive(sock, nb, maxFds, exact, kind, extraFlags);
    keepAlive(buffers);
    return fds;
  }

  /** receiveFds() into a single buffer (the scalar methods), entirely in the receive block. */
  receiveOne(sock: number, buffer: Uint8Array, maxFds: number, exact: boolean, kind: Kind, extraFlags: number): OwnedFd[] {
    // Split into small steps so the JIT can inline the whole path into the socket method.
    if (maxFds > FIXED_BUDGET) return this.#receiveOneGeneral(sock, buffer, maxFds, exact, kind, extraFlags);
    this.#prepareBlock(buffer);
    const n = recvmsg(sock, this.#recvBlock.address, RECV_FLAGS | extraFlags);
    keepAlive(buffer);
    return n === WOULD_BLOCK ? WOULD_BLOCK_FDS : this.#finishBlock(n, maxFds, exact, kind);
  }

  /** darwin (budget follows RLIMIT_NOFILE) or more fds than the fixed budget: the general path. */
  #receiveOneGeneral(sock: number, buffer: Uint8Array, maxFds: number, exact: boolean, kind: Kind, extraFlags: number): OwnedFd[] {
    oneBuffer[0] = buffer;
    try {
      return this.receiveFds(sock, oneBuffer, maxFds, exact, kind, extraFlags);
    } finally {
      oneBuffer[0] = EMPTY;
    }
  }

  /** Zeroes what the last receive wrote (the region is all zeros before every recvmsg, see #receive), aims the iovec, resets msg_controllen. */
  #prepareBlock(buffer: Uint8Array): void {
    const blk = this.#recvBlock;
    const I = blk.i32;
    if (this.#blockDirty > 0) {
      zeroDirty(I, blk.controlWord, this.#blockDirty);
      this.#blockDirty = 0;
    }
    blk.setBuffer(buffer);
    I[CONTROLLEN_W] = blk.controlSize; // the kernel rewrote it; glibc's high word / musl's pad stays 0
  }

  /** After a successful recvmsg into the block: owns every delivered fd before anything can fail, then the pipeline's checks. */
  #finishBlock(n: number, maxFds: number, exact: boolean, kind: Kind): OwnedFd[] {
    const blk = this.#recvBlock;
    const I = blk.i32;
    const size = blk.controlSize;
    const reported = controllenOf(I);
    const controllen = reported < size ? reported : size;
    this.#blockDirty = controllen;
    this.bytesRead = n;
    return finishReceive(I, blk.controlWord, blk.controlView, controllen, I[FLAGS_W]!, n, maxFds, exact, kind);
  }


  /** Payload bytes of the last receiveFds/receiveOne (read it before the next receive). */
  bytesRead = 0;

  /** One recvmsg into the iovecs already set, then the pipeline. */
  #receive(sock: number, iovlen: number, maxFds: number, exact: boolean, kind: Kind, extraFlags: number): OwnedFd[] {
    const size = maxFds <= FIXED_BUDGET ? this.#fixedControlSize : this.#controlSizeFor(maxFds);
    // The buffer is all zeros before every recvmsg: the kernel writes only the first msg_controllen
    // bytes, so re-zeroing what the previous receive reported keeps the whole buffer zero.
    if (this.#recvCtlDirty > 0) {
      zeroDirty(this.#recvCtlI32, 0, this.#recvCtlDirty);
      this.#recvCtlDirty = 0;
    }
    const h = this.#recvHdr;
    h.aim(this.#recvIov.address, iovlen, this.#recvCtlPtr, size);
    const n = recvmsg(sock, h.address, RECV_FLAGS | extraFlags);
    keepAlive(this.#recvCtl);
    if (n === WOULD_BLOCK) return WOULD_BLOCK_FDS; // nothing was written: the buffer is still zero
    const I = h.i32;
    const controllen = Math.min(controllenOf(I), size);
    this.#recvCtlDirty = controllen;
    this.bytesRead = n;
    return finishReceive(this.#recvCtlI32, 0, this.#recvCtlView, controllen, I[FLAGS_W]!, n, maxFds, exact, kind);
  }

  #controlSizeFor(maxFds: number): number {
    const size = receiveControlSize(abi, maxFds, receiveBudget());
    if (this.#recvCtl.byteLength < size) this.#growRecvControl(size);
    return size;
  }

  /**
   * One recvmsg into caller iovecs and a caller control region (the low-level cmsgRecvmsg). The region is
   * zeroed first (`view` covers exactly it). Every message the kernel wrote is appended to `records`
   * with the fds it owns (adoptReceived); on a CLOEXEC-fallback failure they are all closed and the
   * error thrown. Returns the control length the kernel wrote; `last` holds bytes and flags.
   */
  receiveControl(sock: number, buffers: readonly Uint8Array[], control: Uint8Array, view: DataView, extraFlags: number, records: ReceivedMessage[]): number {
    control.fill(0);
    const iov = this.#recvIov;
    iov.ensure(buffers.length);
    for (let i = 0; i < buffers.length; i++) iov.set(i, buffers[i]!);
    const h = this.#recvHdr;
    const ctlSize = viewByteLength(control);
    h.aim(iov.address, buffers.length, ctlSize > 0 ? ptr(control) : 0, ctlSize);
    const n = recvmsg(sock, h.address, RECV_FLAGS | extraFlags);
    keepAlive(buffers, control);
    const I = h.i32;
    const msgFlags = I[FLAGS_W]!;
    this.last.bytesRead = n;
    this.last.truncated = (msgFlags & K.MSG_CTRUNC) !== 0;
    this.last.dataTruncated = (msgFlags & K.MSG_TRUNC) !== 0;
    const written = Math.min(controllenOf(I), ctlSize, view.byteLength);
    const all = adoptReceived(null, 0, view, written, records);
    try {
      finishCloexec(all);
    } catch (e) {
      closeAll(all);
      records.length = 0;
      throw e;
    }
    return written;
  }
}

/** msg_controllen as the kernel left it (a 64-bit length with a high word set: more than any buffer). */
function controllenOf(I: Int32Array): number {
  return CONTROLLEN_WIDE && I[CONTROLLEN_W + 1] !== 0 ? Number.MAX_SAFE_INTEGER : I[CONTROLLEN_W]! >>> 0;
}

/**
 * recvmsg(2) with EINTR retried; errno is read right after the failing call. With MSG_DONTWAIT in
 * `flags` (the library's own async attempts) EAGAIN returns WOULD_BLOCK instead of throwing: an empty
 * socket is the async path's normal case, and building an Error for it costs microseconds.
 * The failure handling is out of line so this stays small enough to inline into the hot paths.
 */
function recvmsg(sock: number, header: Pointer, flags: number): number {
  const n = libcRecvmsg(sock, header, flags) as number;
  return n >= 0 ? n : recvmsgFailed(sock, header, flags);
}

/** recvmsg() after a -1: reads errno first, then retries on EINTR (the kernel consumed nothing). */
function recvmsgFailed(sock: number, header: Pointer, flags: number): number {
  for (;;) {
    const e = errno();
    if (e === EAGAIN && (flags & K.MSG_DONTWAIT) !== 0) return WOULD_BLOCK;
    if (e !== EINTR) throw new SystemError("recvmsg", e);
    const n = libcRecvmsg(sock, header, flags) as number;
    if (n >= 0) return n;
  }
}

/** sendmsg(2), as recvmsg(): small enough to inline, the failure handling out of line. */
function sendmsg(sock: number, header: Pointer, flags: number): number {
  const r = libcSendmsg(sock, header, flags) as number;
  return r >= 0 ? r : sendmsgFailed(sock, header, flags);
}

/** sendmsg after a -1, as recvmsgFailed: EINTR retried, EAGAIN under MSG_DONTWAIT is WOULD_BLOCK. */
function sendmsgFailed(sock: number, header: Pointer, flags: number): number {
  for (;;) {
    const e = errno();
    if (e === EAGAIN && (flags & K.MSG_DONTWAIT) !== 0) return WOULD_BLOCK;
    if (e !== EINTR) throw e === abi.errno.EBADF ? badFdError(sock, header) : new SystemError("sendmsg", e);
    const r = libcSendmsg(sock, header, flags) as number;
    if (r >= 0) return r;
  }
}

/** One received control message and the fds it still owns (the low-level API's unit; see SocketAncillary). */
export interface ReceivedMessage {
  readonly message: AncillaryMessage;
  /** The fds adoptReceived() owned for this message (empty for kinds without fds). */
  readonly fds: readonly OwnedFd[];
}

const kinds = kindsOf(abi);
const RIGHTS = kinds.rights;
const cursor = new CmsgCursor(abi);
const NO_FDS: readonly OwnedFd[] = Object.freeze([]);

/**
 * THE place where received fds become OwnedFds. Every receive path calls it once, on fresh kernel
 * output, right after a successful recvmsg and before anything that can fail.
 *
 * - The common shape — exactly one SCM_RIGHTS message filling the control data — is read straight
 *   through the Int32Array `I` (control region starting at word `at`), when the caller has one.
 * - Otherwise every message is walked (`view` covers the control region from its byte 0): each fd slot
 *   of every kind the registry marks as fd-carrying becomes an OwnedFd, whatever the kind. Unknown
 *   kinds never yield fds.
 * - `records === null` (the high-level receives, which deliver SCM_RIGHTS only): returns the rights fds
 *   in order and closes the fds of every other fd-carrying kind (SCM_PIDFD, ...) before returning.
 * - `records` given (cmsgRecvmsg): appends every message — known kinds decoded by the registry, unknown
 *   ones as raw bytes — with the fds it owns, and returns every fd owned.
 * Both apply the walker's rules (header fits, cmsg_len within bounds, whole fd slots, negative slots
 * skipped). If anything throws part-way, every fd owned so far is closed before the error propagates.
 */
function adoptReceived(I: Int32Array | null, at: number, view: DataView, controllen: number, records: ReceivedMessage[] | null): OwnedFd[] {
  if (I !== null && controllen >= CMSG_HEADER_SIZE && !(CMSG_LEN_WIDE && I[at + CMSG_LEN_W + 1] !== 0)) {
    // Fast path: one SCM_RIGHTS message whose CMSG_SPACE covers all of controllen. len <= controllen
    // keeps it far below 2^31, so the alignment arithmetic stays in int32.
    const len = I[at + CMSG_LEN_W]!;
    if (
      len >= CMSG_HEADER_LEN && len <= controllen && ((len + CMSG_ALIGN_MASK) & ~CMSG_ALIGN_MASK) >= controllen &&
      I[at + CMSG_LEVEL_W] === RIGHTS.level && I[at + CMSG_TYPE_W] === RIGHTS.type
    ) {
      const slots = (len - CMSG_HEADER_LEN) >> 2;
      if (slots === 1) {
        const fd = I[at + CMSG_DATA_W]!;
        return fd >= 0 ? [adopt(fd)] : [];
      }
      if (slots > 1) return adoptSlots(I, at + CMSG_DATA_W, slots);
    }
  }
  const owned: OwnedFd[] = [];
  const rights: OwnedFd[] = records === null ? [] : owned;
  // Low-level: messages are decoded only once every fd of every message is owned (a decode that
  // throws must not leave a later message's fds unowned).
  const pending: { kind: CmsgKind | null; level: number; type: number; at: number; length: number; fds: OwnedFd[] }[] | null = records === null ? null : [];
  try {
    const c = cursor.reset(view, 0, controllen);
    while (c.next()) {
      const kind = c.kind();
      let fds = NO_FDS as OwnedFd[];
      if (kind !== null && kind.carriesFds) {
        fds = [];
        for (let i = 0, slots = c.fdSlots; i < slots; i++) {
          const fd = c.fdAt(i);
          if (fd < 0) continue;
          const o = adopt(fd);
          owned.push(o);
          fds.push(o);
        }
      }
      if (pending !== null) pending.push({ kind, level: c.level, type: c.type, at: c.dataOffset, length: c.dataLength, fds });
      else if (kind === RIGHTS) for (const o of fds) rights.push(o);
      else if (fds.length > 0) closeAll(fds);
    }
    if (pending !== null) {
      for (const p of pending) {
        const message = p.kind !== null ? p.kind.message(view, p.at, p.length, p.fds) : unknownMessage(view, p.level, p.type, p.at, p.length);
        records!.push({ message, fds: p.fds });
      }
    }
  } catch (e) {
    closeAll(owned);
    if (records !== null) records.length = 0;
    throw e;
  }
  return rights;
}

const EMPTY = new Uint8Array(0);
/** Reused one-element buffer list for receiveOne's general fallback. */
const oneBuffer: Uint8Array[] = [EMPTY];

/**
 * The high-level receive pipeline after a successful recvmsg, shared by the scalar block and the general
 * header: owns every delivered fd first (adoptReceived), then returns them when nothing needs checking —
 * no truncation, count within bounds, CLOEXEC done by the kernel — or hands them to settleFds.
 */
function finishReceive(I: Int32Array, at: number, view: DataView, controllen: number, msgFlags: number, n: number, maxFds: number, exact: boolean, kind: Kind): OwnedFd[] {
  const fds = controllen > 0 ? adoptReceived(I, at, view, controllen, null) : [];
  const count = fds.length;
  if (NATIVE_CLOEXEC && (msgFlags & (kind === Kind.Message ? CTRUNC_OR_TRUNC : K.MSG_CTRUNC)) === 0 && (exact ? count === maxFds : count <= maxFds)) {
    return fds;
  }
  return settleFds(fds, msgFlags, maxFds, exact, kind, n);
}

/**
 * Re-zeroes the `dirty` bytes the kernel wrote into a control region starting at word `at`, so the
 * region is all zeros before every recvmsg (the kernel writes only the first msg_controllen bytes). A
 * few words with plain stores (a typical receive), a long rights message with one fill.
 */
function zeroDirty(I: Int32Array, at: number, dirty: number): void {
  const end = at + ((dirty + 3) >>> 2);
  if (dirty <= 256) for (let w = at; w < end; w++) I[w] = 0;
  else I.fill(0, at, end);
}

/**
 * The receive pipeline's checks once every fd is owned (the uncommon outcomes): CLOEXEC fallback,
 * MSG_CTRUNC, datagram MSG_TRUNC, exact count; then surplus fds beyond maxFds are closed. On any
 * failure every fd is closed before the error is thrown.
 */
function settleFds(fds: OwnedFd[], msgFlags: number, maxFds: number, exact: boolean, kind: Kind, bytesRead: number): OwnedFd[] {
  try {
    finishCloexec(fds);
    if ((msgFlags & K.MSG_CTRUNC) !== 0) throw new UnixAncillaryError("ERR_UA_ANCILLARY_TRUNCATED", MESSAGES.ancillaryTruncated);
    if (kind === Kind.Message && (msgFlags & K.MSG_TRUNC) !== 0) throw new UnixAncillaryError("ERR_UA_DATAGRAM_TRUNCATED", MESSAGES.datagramTruncated);
    if (exact && fds.length !== maxFds) throw countMismatch(maxFds, fds.length);
  } catch (e) {
    closeAll(fds);
    // the payload of this receive is consumed either way: say how much, so a stream can resynchronise
    if (e instanceof UnixAncillaryError) e.bytesRead = bytesRead;
    throw e;
  }
  if (fds.length > maxFds) {
    for (let i = maxFds; i < fds.length; i++) fds[i]!.close();
    fds.length = maxFds;
  }
  return fds;
}

function countMismatch(n: number, observed: number): UnixAncillaryError {
  return new UnixAncillaryError("ERR_UA_FD_COUNT_MISMATCH", MESSAGES.exactCount(n, observed));
}

/**
 * CLOEXEC fallback for ABIs without MSG_CMSG_CLOEXEC (darwin): ioctl(FIOCLEX) on each fd. Throws on the
 * first failure; the caller closes the whole batch. Races with a concurrent fork+exec (documented).
 */
export function finishCloexec(fds: readonly OwnedFd[]): void {
  if (abi.cloexec === "msg_cmsg_cloexec") return;
  cloexecFallback(fds);
}

/**
 * The fallback itself, compiled and tested on every platform (the crate's 5.1.2): FD_CLOEXEC on each fd
 * in order; the first failure is thrown and the caller closes the whole batch.
 */
export function cloexecFallback(fds: readonly OwnedFd[]): void {
  for (const fd of fds) setCloexec(fd.fd);
}

/** Keeps values visibly used after an FFI call so no optimiser can drop the last reference early. */
let sink: unknown;
function keepAlive(a: unknown, b?: unknown): void {
  if (a === sink) sink = b;
}

export const engine = new Engine();

/** sendmsg's EBADF, saying which fd: the socket, or which of the fds being sent (out of line, error path only). */
function badFdError(sock: number, header: Pointer): SystemError {
  const e = new SystemError("sendmsg", abi.errno.EBADF);
  if (!isOpen(sock)) e.message += `: the socket (fd ${sock}) is not open`;
  else {
    const closed = engine.closedStagedFds(header);
    e.message += closed !== null && closed.length > 0 ? `: fd ${closed.join(", fd ")} (among the fds being sent) is not open` : ": one of the fds being sent is not open";
  }
  return e;
}

