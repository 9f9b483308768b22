/**
 * Control-message encoder (send side). Pure: bytes in, bytes out, no fds owned or closed here.
 * Each message is written field by field at the ABI's offsets after zero-filling its whole
 * CMSG_SPACE region, so header padding and tail padding are deterministic zeros (docs/design.md, "Wire format").
 */
import type { Abi } from "../platform/abi.ts";
import { cmsgLen, cmsgSpace, FD_SIZE } from "./sizes.ts";
import { fieldMax, writeInt32, writeUnsigned } from "./fields.ts";

/**
 * Appends one control message at `offset` (relative to the start of `bytes`) whose payload is written by
 * `writePayload(dv, payloadOffset)`. Returns the new end offset, or -1 when it does not fit (nothing is
 * written then).
 */
export function appendCmsg(
  abi: Abi,
  bytes: Uint8Array,
  dv: DataView,
  offset: number,
  level: number,
  type: number,
  payloadLength: number,
  writePayload: (dv: DataView, at: number) => void,
): number {
  const space = cmsgSpace(abi, payloadLength);
  const end = offset + space;
  const len = cmsgLen(abi, payloadLength);
  if (!Number.isSafeInteger(end) || end > bytes.length || len > fieldMax(abi.cmsg.len)) return -1;
  bytes.fill(0, offset, end);
  writeUnsigned(dv, offset, abi.cmsg.len, len);
  writeInt32(dv, offset, abi.cmsg.level, level);
  writeInt32(dv, offset, abi.cmsg.type, type);
  writePayload(dv, offset + abi.cmsg.headerLen);
  return end;
}

/** Appends an SCM_RIGHTS message carrying `fds` (already validated non-negative int32s). */
export function appendRights(abi: Abi, bytes: Uint8Array, dv: DataView, offset: number, fds: ArrayLike<number>, count = fds.length): number {
  return appendCmsg(abi, bytes, dv, offset, abi.constants.SOL_SOCKET, abi.constants.SCM_RIGHTS, count * FD_SIZE, (view, at) => {
    for (let i = 0; i < count; i++) view.setInt32(at + i * FD_SIZE, fds[i]!, true);
  });
}

/** Appends an SCM_CREDENTIALS message {pid, uid, gid} (Linux). Returns -1 where the ABI has none. */
export function appendCredentials(abi: Abi, bytes: Uint8Array, dv: DataView, offset: number, pid: number, uid: number, gid: number): number {
  const ucred = abi.ucred;
  if (!ucred || abi.constants.SCM_CREDENTIALS < 0) return -1;
  return appendCmsg(abi, bytes, dv, offset, abi.constants.SOL_SOCKET, abi.constants.SCM_CREDENTIALS, ucred.size, (view, at) => {
    view.setInt32(at + ucred.pid.offset, pid, true);
    view.setUint32(at + ucred.uid.offset, uid >>> 0, true);
    view.setUint32(at + ucred.gid.offset, gid >>> 0, true);
  });
}
