/**
 * MsgBlock: the library's one msghdr type. One msghdr, one iovec and one control region in a single
 * ArrayBuffer, addressed through a single Int32Array — the scalar send and receive hot paths' whole
 * working set; aim() points the same msghdr at an outside iovec list and control region instead (the
 * vectored and low-level calls).
 *
 * Why one block: between two syscalls the kernel evicts much of the cache, so the JS around a
 * sendmsg/recvmsg pays a miss for every distinct object it touches. Separate header, iovec and control
 * buffers (each a typed-array object plus its storage) cost measurably more per call than one buffer
 * and one view (bench/README.md).
 *
 * Ownership: a block holds no fds. It remembers (and so keeps alive) the last payload buffer its iovec
 * pointed at until release(); the fd numbers in its control region are copies, never closed here.
 * The block's own storage lives as long as the block: the engine keeps both blocks for the life of
 * the thread, so the addresses written into the msghdr stay valid (docs/design.md, "Pointers and buffers").
 */
import { ptr, type Pointer } from "bun:ffi";
import { abi } from "./platform/index.ts";
import { storeWords } from "./cmsg/fields.ts";
import { isResizable, viewBuffer, viewByteLength } from "./intrinsics.ts";

const M = abi.msghdr;
const IOV = abi.iovec;

const align8 = (n: number): number => (n + 7) & ~7;

/** The ArrayBuffer behind `view`, created now if it did not exist yet (which may move the view's storage). */
const materialise = viewBuffer;


export class MsgBlock {
  /** The whole block; word 0 is the msghdr. */
  readonly i32: Int32Array;
  /** Address of the msghdr (the block's start). */
  readonly address: Pointer;
  /** Word index and byte offset of the control region (8-aligned: cmsghdr alignment on every ABI). */
  readonly controlWord: number;
  readonly controlOffset: number;
  readonly controlSize: number;
  /** A DataView over exactly the control region, for the general cmsg walker. */
  readonly controlView: DataView;
  readonly #iovAt: number;
  readonly #controlAddress: number;
  // The iovec's current target: a loop reusing one buffer skips ptr() (≈20 ns). A given typed array's
  // address never changes once its ArrayBuffer exists (docs/design.md, "Pointers and buffers"), and its
  // offset is fixed at construction, so identity plus length is a sufficient key: a detached view
  // reads as length 0, and only non-empty views over non-resizable buffers are remembered. (Reading
  // byteOffset too cost ≈ 1 % of a 1-fd round trip: it touches the ArrayBuffer.)
  #buf: Uint8Array | null = null;
  /** Held only to keep `.buffer` materialised (see setBuffer): never read. */
  #arrayBuffer: ArrayBufferLike | null = null;
  #bufLength = -1;
  /** The last buffer seen but not remembered: a buffer is remembered on its second use in a row. */
  #seen: Uint8Array | null = null;

  constructor(controlSize: number) {
    const iovAt = align8(M.size);
    const controlAt = align8(iovAt + IOV.size);
    const buffer = new ArrayBuffer(controlAt + controlSize);
    this.i32 = new Int32Array(buffer);
    this.address = ptr(this.i32);
    this.#iovAt = iovAt;
    this.controlOffset = controlAt;
    this.controlWord = controlAt >> 2;
    this.controlSize = controlSize;
    this.controlView = new DataView(buffer, controlAt, controlSize);
    this.#controlAddress = this.address + controlAt;
    storeWords(this.i32, 0, M.iov, this.address + iovAt);
    storeWords(this.i32, 0, M.iovlen, 1);
  }

  /** Points the iovec at all of `buf` (a zero-length buffer gets a null base: ptr() rejects empty views). */
  setBuffer(buf: Uint8Array): void {
    // Built-in getters: a caller's own accessor on the view is never consulted (src/intrinsics.ts).
    const len = viewByteLength(buf);
    if (buf === this.#buf && len === this.#bufLength) return;
    let address = 0;
    if (len > 0) {
      const backing = buf === this.#seen ? materialise(buf) : null;
      if (backing !== null && !isResizable(backing)) {
        // Second use in a row: remember it. Materialise the ArrayBuffer before taking the address —
        // JSC moves a small typed array's storage when its .buffer is first created, which would
        // strand a remembered pointer; afterwards the storage stays put for the life of the buffer.
        // Never a resizable buffer's view: WebAssembly.Memory#toResizableBuffer() memory moves on
        // grow() while its views stay attached with the same length (docs/design.md, "Pointers
        // and buffers"), so such a view gets a fresh address every call.
        this.#arrayBuffer = backing;
        this.#buf = buf;
        this.#bufLength = len;
      } else {
        // A one-off buffer (an encoded string, a fresh slice) is used for this call only: its address
        // is valid for the duration of the syscall, and creating its ArrayBuffer would cost more
        // than the call.
        this.#seen = buf;
        this.#buf = null;
        this.#arrayBuffer = null;
      }
      address = ptr(buf);
    } else {
      this.#buf = null;
      this.#arrayBuffer = null;
    }
    storeWords(this.i32, this.#iovAt, IOV.base, address);
    storeWords(this.i32, this.#iovAt, IOV.len, len);
  }

  /** Points the iovec at buf[start..] without remembering it (a one-off: the tail of a send-all). */
  setRange(buf: Uint8Array, start: number): void {
    const len = viewByteLength(buf) - start;
    this.release();
    storeWords(this.i32, this.#iovAt, IOV.base, len > 0 ? ptr(buf, start) : 0);
    storeWords(this.i32, this.#iovAt, IOV.len, len);
  }

  /** Forgets the remembered payload buffer (so the block does not keep a caller's buffer alive). */
  release(): void {
    this.#buf = null;
    this.#seen = null;
    this.#arrayBuffer = null;
    this.#bufLength = -1;
  }

  /**
   * Points the msghdr at `iovlen` iovecs at address `iov` and `controllen` control bytes at `control`
   * (NULL/0 when empty); the block's own iovec and control region are then unused. The addresses must
   * stay valid until the syscall returns (the caller keeps their buffers alive).
   */
  aim(iov: number, iovlen: number, control: number, controllen: number): void {
    const I = this.i32;
    storeWords(I, 0, M.iov, iovlen > 0 ? iov : 0);
    storeWords(I, 0, M.iovlen, iovlen);
    storeWords(I, 0, M.control, controllen > 0 ? control : 0);
    storeWords(I, 0, M.controllen, controllen);
  }

  /**
   * Sets msg_control/msg_controllen to the first `length` bytes of the control region, or to
   * NULL/0 when length is 0 (BSD rejects a non-null msg_control shorter than a cmsghdr).
   */
  setControl(length: number): void {
    storeWords(this.i32, 0, M.control, length > 0 ? this.#controlAddress : 0);
    storeWords(this.i32, 0, M.controllen, length);
  }
}
