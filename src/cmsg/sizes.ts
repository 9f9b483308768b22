/**
 * CMSG_LEN / CMSG_SPACE arithmetic done in plain numbers from two per-ABI facts: header_len = CMSG_LEN(0)
 * and align = CMSG_SPACE(1) - CMSG_SPACE(0) (docs/design.md, "Wire format"). Every size is checked against
 * Number.MAX_SAFE_INTEGER, the JS counterpart of the crate's checked usize arithmetic.
 */
import type { Abi } from "../platform/abi.ts";
import { FD_SIZE, kindsOf } from "./kinds.ts";
import { describe, invalidArgType, outOfRange, UnixAncillaryError } from "../errors.ts";

/** Re-exported: describe() lives with the errors it words. */
export { describe };

export { FD_SIZE };

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
  const kind = kindsOf(abi).credentials;
  if (kind === null) {
    throw new UnixAncillaryError("ERR_UA_UNSUPPORTED", `SCM_CREDENTIALS does not exist on ${abi.os}`);
  }
  return cmsgSpace(abi, kind.payloadSize);
}

/**
 * Control bytes the kernel may add to a message on its own, whatever the sender sent: one message of
 * every registry kind a socket option attaches (credentials, timestamps, ...). Reserving them all costs
 * nothing per receive (only what the kernel writes is re-zeroed) and needs no getsockopt per call.
 */
export function attachedControlSize(abi: Abi): number {
  let total = 0;
  for (const kind of kindsOf(abi).all) if (kind.attachedBy >= 0) total += cmsgSpace(abi, kind.payloadSize);
  return total;
}

/**
 * The receive control buffer of the high-level API: rights(max(n, budget)), plus room for every control
 * message a socket option can make the kernel attach (attachedControlSize), so a full batch of fds never
 * truncates because SO_PASSCRED or SO_TIMESTAMP is on.
 */
export function receiveControlSize(abi: Abi, maxFds: number, budget: number): number {
  const total = bufferSizeForRights(abi, Math.max(maxFds, budget)) + attachedControlSize(abi);
  if (!Number.isSafeInteger(total)) {
    throw new UnixAncillaryError("ERR_UA_SIZE_OVERFLOW", "ancillary buffer size overflow");
  }
  return total;
}
