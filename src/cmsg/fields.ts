/**
 * Unaligned, per-field reads and writes of C struct fields in a DataView. Never forms an aligned view
 * over caller bytes (the crate's audit P1: an offset slice must work at every byte offset). 8-byte fields
 * are split into two 32-bit halves so the hot path needs no BigInt; values above 2^53 cannot occur for
 * lengths and user-space pointers (47-bit on x86_64/aarch64 Linux and macOS).
 */
import type { Field } from "../platform/abi.ts";

const TWO_32 = 0x1_0000_0000;

/** Reads an unsigned field (2, 4 or 8 bytes, little-endian). */
export function readUnsigned(dv: DataView, at: number, field: Field): number {
  const o = at + field.offset;
  switch (field.size) {
    case 2:
      return dv.getUint16(o, true);
    case 4:
      return dv.getUint32(o, true);
    default:
      return dv.getUint32(o + 4, true) * TWO_32 + dv.getUint32(o, true);
  }
}

/** Writes an unsigned field (2, 4 or 8 bytes, little-endian). Callers pass integers in [0, 2^53). */
export function writeUnsigned(dv: DataView, at: number, field: Field, value: number): void {
  const o = at + field.offset;
  switch (field.size) {
    case 2:
      dv.setUint16(o, value, true);
      return;
    case 4:
      dv.setUint32(o, value >>> 0, true);
      return;
    default:
      dv.setUint32(o, value >>> 0, true);
      dv.setUint32(o + 4, Math.floor(value / TWO_32), true);
  }
}

/**
 * Writes an unsigned 4- or 8-byte little-endian field through 32-bit words (Int32Array or Uint32Array
 * over the whole struct buffer) at byte offset `at` + field.offset, which must be 4-aligned: the hot
 * paths' struct writer (msghdr, iovec in MsgBlock and the general header). Integers in [0, 2^53).
 */
export function storeWords(words: Int32Array | Uint32Array, at: number, field: Field, value: number): void {
  const w = (at + field.offset) >> 2;
  words[w] = value >>> 0; // the low 32 bits (the same bits whether the array is signed or not)
  if (field.size === 8) words[w + 1] = (value / TWO_32) | 0; // < 2^21 for values < 2^53: truncation is floor
}

/** Reads a signed 32-bit field (pid, cmsg_level, cmsg_type, fds). */
export function readInt32(dv: DataView, at: number, field: Field): number {
  return dv.getInt32(at + field.offset, true);
}

export function writeInt32(dv: DataView, at: number, field: Field, value: number): void {
  dv.setInt32(at + field.offset, value, true);
}

/** The largest value an unsigned field of this width holds (cmsg_len is 4 bytes on musl/BSD). */
export function fieldMax(field: Field): number {
  return field.size === 8 ? Number.MAX_SAFE_INTEGER : field.size === 4 ? 0xffff_ffff : 0xffff;
}

/** A DataView over exactly the bytes of a Uint8Array (which may start at any offset of its buffer). */
export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
