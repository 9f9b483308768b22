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

export class CmsgCursor {
  readonly #abi: Abi;
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

  isRights(): boolean {
    const k = this.#abi.constants;
    return this.level === k.SOL_SOCKET && this.type === k.SCM_RIGHTS;
  }

  isCredentials(): boolean {
    const k = this.#abi.constants;
    const u = this.#abi.ucred;
    return k.SCM_CREDENTIALS >= 0 && u !== null && this.level === k.SOL_SOCKET && this.type === k.SCM_CREDENTIALS && this.dataLength >= u.size;
  }

  /** Credentials of the current message; call only when isCredentials(). */
  credentials(): { pid: number; uid: number; gid: number } {
    const u = this.#abi.ucred!;
    const dv = this.#dv!;
    return {
      pid: dv.getInt32(this.dataOffset + u.pid.offset, true),
      uid: dv.getUint32(this.dataOffset + u.uid.offset, true),
      gid: dv.getUint32(this.dataOffset + u.gid.offset, true),
    };
  }

  #stop(): false {
    this.#pos = this.#end;
    return false;
  }
}

/** A parsed message, as plain data (used by tests, fuzzing and diagnostics; never by the owning path). */
export type ParsedCmsg =
  | { readonly type: "rights"; readonly fds: number[] }
  | { readonly type: "credentials"; readonly pid: number; readonly uid: number; readonly gid: number }
  | { readonly type: "other"; readonly level: number; readonly cmsgType: number; readonly dataOffset: number; readonly dataLength: number };

/**
 * Parses arbitrary bytes into plain records without creating any owner (the crate's __fuzz_parse):
 * rights become arrays of non-negative integers, nothing else.
 */
export function parseControlMessages(abi: Abi, bytes: Uint8Array, length = bytes.length): ParsedCmsg[] {
  const out: ParsedCmsg[] = [];
  const cursor = new CmsgCursor(abi).reset(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0, length);
  while (cursor.next()) {
    if (cursor.isRights()) {
      const fds: number[] = [];
      for (let i = 0; i < cursor.fdSlots; i++) {
        const fd = cursor.fdAt(i);
        if (fd >= 0) fds.push(fd);
      }
      out.push({ type: "rights", fds });
    } else if (cursor.isCredentials()) {
      out.push({ type: "credentials", ...cursor.credentials() });
    } else {
      out.push({ type: "other", level: cursor.level, cmsgType: cursor.type, dataOffset: cursor.dataOffset, dataLength: cursor.dataLength });
    }
  }
  return out;
}
