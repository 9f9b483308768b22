/**
 * Control-message parser (receive side). A bounded byte walker over untrusted bytes: it never throws,
 * always terminates (each step consumes at least header_len bytes or stops), never reads outside
 * [start, start + length), and never creates fd ownership — it only reports integers. Turning those
 * integers into OwnedFd is the receive path's job, done once, on fresh kernel output (docs/design.md, "Wire format").
 *
 * CmsgCursor is allocated once and reused, so the hot receive path allocates nothing here.
 */
import type { Abi } from "../platform/abi.ts";
import { readInt32, readUnsigned } from "./fields.ts";
import { FD_SIZE, roundUp } from "./sizes.ts";
import { kindsOf, type CmsgKind, type CmsgKinds, type ParsedCmsg } from "./kinds.ts";

export type { ParsedCmsg };

export class CmsgCursor {
  readonly #abi: Abi;
  readonly #kinds: CmsgKinds;
  #dv: DataView | null = null;
  #pos = 0;
  #end = 0;
  /** Fields of the current message, valid after next() returned true. */
  level = 0;
  type = 0;
  /** Offset of the payload within the DataView, and its length in bytes. */
  dataOffset = 0;
  dataLength = 0;

  constructor(abi: Abi) {
    this.#abi = abi;
    this.#kinds = kindsOf(abi);
  }

  /** Starts a walk over `length` bytes at `start` of `dv`. */
  reset(dv: DataView, start: number, length: number): this {
    this.#dv = dv;
    this.#pos = start;
    // Clamp to the view: a kernel-reported length is trusted no further than the buffer we own.
    this.#end = Math.min(start + Math.max(0, length), dv.byteLength);
    return this;
  }

  /** Advances to the next well-formed message; false at the end or at the first malformed header. */
  next(): boolean {
    const dv = this.#dv;
    if (dv === null) return false;
    const c = this.#abi.cmsg;
    const remaining = this.#end - this.#pos;
    if (remaining < c.headerSize) return this.#stop();
    const at = this.#pos;
    const total = readUnsigned(dv, at, c.len);
    if (total < c.headerLen || total > remaining) return this.#stop();
    this.level = readInt32(dv, at, c.level);
    this.type = readInt32(dv, at, c.type);
    this.dataOffset = at + c.headerLen;
    this.dataLength = total - c.headerLen;
    const space = c.headerLen + roundUp(this.dataLength, c.align);
    // A last message without trailing padding is still yielded; the walk then ends.
    this.#pos = space <= remaining ? at + space : this.#end;
    return true;
  }

  /** Number of whole fd slots in the current payload (a trailing partial slot is ignored). */
  get fdSlots(): number {
    return Math.floor(this.dataLength / FD_SIZE);
  }

  /** The i-th fd integer of the current payload (may be negative: callers skip those). */
  fdAt(i: number): number {
    return this.#dv!.getInt32(this.dataOffset + i * FD_SIZE, true);
  }

  /**
   * The registry kind of the current message, or null when it is unknown — or known but with a payload
   * shorter than the kind's fixed layout (such a message is handled as unknown: raw bytes, never fds).
   */
  kind(): CmsgKind | null {
    const kind = this.#kinds.find(this.level, this.type);
    return kind !== null && this.dataLength >= kind.payloadSize ? kind : null;
  }

  /** The DataView being walked (valid after reset()). */
  get view(): DataView {
    return this.#dv!;
  }

  #stop(): false {
    this.#pos = this.#end;
    return false;
  }
}

/**
 * Parses arbitrary bytes into plain records without creating any owner (the crate's __fuzz_parse):
 * fd-carrying kinds become arrays of non-negative integers, known kinds their fields, unknown ones
 * their level/type/payload position.
 */
export function parseControlMessages(abi: Abi, bytes: Uint8Array, length = bytes.length): ParsedCmsg[] {
  const out: ParsedCmsg[] = [];
  const cursor = new CmsgCursor(abi).reset(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0, length);
  while (cursor.next()) {
    const kind = cursor.kind();
    out.push(
      kind !== null
        ? kind.parse(cursor.view, cursor.dataOffset, cursor.dataLength)
        : { type: "other", level: cursor.level, cmsgType: cursor.type, dataOffset: cursor.dataOffset, dataLength: cursor.dataLength },
    );
  }
  return out;
}
