/**
 * CMSG_LEN / CMSG_SPACE arithmetic done in plain numbers from two per-ABI facts: header_len = CMSG_LEN(0)
 * and align = CMSG_SPACE(1) - CMSG_SPACE(0) (docs/design.md, "Wire format"). Every size is checked against
 * Number.MAX_SAFE_INTEGER, the JS counterpart of the crate's checked usize arithmetic.
 */
import type { Abi } from "../platform/abi.ts";
import { invalidArgType, outOfRange, UnixAncillaryError } from "../errors.ts";

/** Bytes an fd occupies in an SCM_RIGHTS payload (a native-endian 32-bit int). */
export const FD_SIZE = 4;

export function roundUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

/** CMSG_LEN(payload): header plus payload, without trailing padding. */
export function cmsgLen(abi: Abi, payload: number): number {
  return abi.cmsg.headerLen + payload;
}

/** CMSG_SPACE(payload): header plus payload padded to the alignment quantum. */
export function cmsgSpace(abi: Abi, payload: number): number {
  return abi.cmsg.headerLen + roundUp(payload, abi.cmsg.align);
}

function assertCount(n: unknown, what: string): asserts n is number {
  if (typeof n !== "number" || !Number.isInteger(n)) throw invalidArgType(what, "an integer", describe(n));
  if (n < 0) throw outOfRange(what, ">= 0", String(n));
}

export function describe(v: unknown): string {
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
  if (v === null) return "null";
  if (v === undefined) return "undefined";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "function") return "a function";
  return (v as object).constructor?.name ? `an instance of ${(v as object).constructor.name}` : "an object";
}

/** Bytes one SCM_RIGHTS control message with `numFds` fds occupies. Throws on overflow (the crate panics). */
export function bufferSizeForRights(abi: Abi, numFds: number): number {
  assertCount(numFds, "numFds");
  const size = cmsgSpace(abi, numFds * FD_SIZE);
  if (!Number.isSafeInteger(size)) {
    throw new UnixAncillaryError("ERR_UA_SIZE_OVERFLOW", "ancillary buffer size overflow");
  }
  return size;
}

/** Bytes one SCM_CREDENTIALS control message occupies (Linux: CMSG_SPACE(12) = 32). */
export function bufferSizeForCredentials(abi: Abi): number {
  if (!abi.ucred || !abi.passCredentials) {
    throw new UnixAncillaryError("ERR_UA_UNSUPPORTED", `SCM_CREDENTIALS does not exist on ${abi.os}`);
  }
  return cmsgSpace(abi, abi.ucred.size);
}

/**
 * The receive control buffer of the high-level API: rights(max(n, budget)), plus room for the
 * credentials the kernel attaches on Linux when SO_PASSCRED is on (crate audit P2).
 */
export function receiveControlSize(abi: Abi, maxFds: number, budget: number): number {
  const rights = bufferSizeForRights(abi, Math.max(maxFds, budget));
  const total = abi.passCredentials && abi.ucred ? rights + cmsgSpace(abi, abi.ucred.size) : rights;
  if (!Number.isSafeInteger(total)) {
    throw new UnixAncillaryError("ERR_UA_SIZE_OVERFLOW", "ancillary buffer size overflow");
  }
  return total;
}
