/**
 * Raw bun:ffi baseline for bench/roundtrip.ts: the minimum FFI cost of the round trip
 * "sendmsg 1 byte + N fds, recvmsg it, close the received fds".
 *
 * Independent of the library's runtime code: its own dlopen, its own buffers, its own socketpair.
 * Only the ABI *tables* (struct layouts and constants from src/platform) are shared, so the same file
 * runs on every Linux ABI the library supports (glibc/musl, x64/arm64: musl's 4-byte length fields
 * are handled by writing the low word and leaving the zeroed pad alone).
 *
 * Hot path: precomputed ptr numbers, no allocation, no closures; the receive header's msg_controllen
 * is reset before each recvmsg (the kernel overwrites it) and the received fds are read straight out
 * of an Int32Array view of the control buffer. Control buffers are CMSG_SPACE(4*N), like the C loop.
 */
import { dlopen, FFIType, ptr } from "bun:ffi";
import { abi, K } from "../src/platform/index.ts";
import type { Field } from "../src/platform/abi.ts";

const lib = dlopen(abi.libName, {
  sendmsg: { args: ["i32", "ptr", "i32"], returns: FFIType.i64_fast },
  recvmsg: { args: ["i32", "ptr", "i32"], returns: FFIType.i64_fast },
  close: { args: ["i32"], returns: "i32" },
  socketpair: { args: ["i32", "i32", "i32", "ptr"], returns: "i32" },
});
const { sendmsg, recvmsg, close } = lib.symbols;

export const SEND_FLAGS = abi.sigpipe === "msg_nosignal" ? K.MSG_NOSIGNAL : 0;
export const RECV_FLAGS = abi.cloexec === "msg_cmsg_cloexec" ? K.MSG_CMSG_CLOEXEC : 0;

/** Writes an unsigned struct field of width 4 or 8 (little-endian, value < 2^53). */
function put(dv: DataView, at: number, f: Field, v: number): void {
  if (f.size === 8) {
    dv.setUint32(at + f.offset, v >>> 0, true);
    dv.setUint32(at + f.offset + 4, Math.floor(v / 0x1_0000_0000), true);
  } else if (f.size === 4) {
    dv.setUint32(at + f.offset, v >>> 0, true);
  } else {
    dv.setUint16(at + f.offset, v, true);
  }
}

function cmsgSpace(payload: number): number {
  const c = abi.cmsg;
  return c.headerLen + Math.ceil(payload / c.align) * c.align;
}

/** The library-independent baseline: one preallocated send/receive pair of msghdrs for N fds. */
export class RawRoundTrip {
  readonly nfds: number;
  // Every buffer a header points into is a field of this object, so it stays reachable (docs/design.md, "Pointers and buffers").
  readonly sData = new Uint8Array([0x78]);
  readonly rData = new Uint8Array(1);
  readonly sIov = new Uint8Array(abi.iovec.size);
  readonly rIov = new Uint8Array(abi.iovec.size);
  readonly sCtl: Uint8Array;
  readonly rCtl: Uint8Array;
  readonly rCtlI32: Int32Array;
  readonly sHdr = new Uint8Array(abi.msghdr.size);
  readonly rHdr = new Uint8Array(abi.msghdr.size);
  readonly rHdrU32 = new Uint32Array(this.rHdr.buffer);
  readonly sHdrPtr: number;
  readonly rHdrPtr: number;
  readonly ctlLen: number;
  readonly #controllenIdx = abi.msghdr.controllen.offset >> 2;
  readonly #cmsgLenIdx = abi.cmsg.len.offset >> 2;
  readonly #cmsgTypeIdx = abi.cmsg.type.offset >> 2;
  readonly #cmsgLevelIdx = abi.cmsg.level.offset >> 2;
  readonly #dataIdx = abi.cmsg.headerLen >> 2;
  readonly #headerLen = abi.cmsg.headerLen;

  constructor(nfds: number, fdToSend: number) {
    if (nfds < 1 || nfds > abi.maxFdsPerSend) throw new RangeError(`nfds must be 1..${abi.maxFdsPerSend}`);
    this.nfds = nfds;
    this.ctlLen = cmsgSpace(4 * nfds);
    this.sCtl = new Uint8Array(this.ctlLen);
    this.rCtl = new Uint8Array(this.ctlLen);
    this.rCtlI32 = new Int32Array(this.rCtl.buffer);

    const c = abi.cmsg;
    const sc = new DataView(this.sCtl.buffer);
    put(sc, 0, c.len, c.headerLen + 4 * nfds);
    sc.setInt32(c.level.offset, K.SOL_SOCKET, true);
    sc.setInt32(c.type.offset, K.SCM_RIGHTS, true);
    for (let i = 0; i < nfds; i++) sc.setInt32(c.headerLen + 4 * i, fdToSend, true);

    const io = abi.iovec;
    const si = new DataView(this.sIov.buffer);
    put(si, 0, io.base, ptr(this.sData));
    put(si, 0, io.len, 1);
    const ri = new DataView(this.rIov.buffer);
    put(ri, 0, io.base, ptr(this.rData));
    put(ri, 0, io.len, 1);

    const M = abi.msghdr;
    const sh = new DataView(this.sHdr.buffer);
    put(sh, 0, M.iov, ptr(this.sIov));
    put(sh, 0, M.iovlen, 1);
    put(sh, 0, M.control, ptr(this.sCtl));
    put(sh, 0, M.controllen, this.ctlLen);
    const rh = new DataView(this.rHdr.buffer);
    put(rh, 0, M.iov, ptr(this.rIov));
    put(rh, 0, M.iovlen, 1);
    put(rh, 0, M.control, ptr(this.rCtl));
    put(rh, 0, M.controllen, this.ctlLen);

    this.sHdrPtr = ptr(this.sHdr);
    this.rHdrPtr = ptr(this.rHdr);
  }

  /** sendmsg(1 byte + N fds) on `a`. */
  send(a: number): void {
    if (sendmsg(a, this.sHdrPtr, SEND_FLAGS) !== 1) throw new Error("raw sendmsg failed");
  }

  /** recvmsg on `b` and close every received fd. Returns the number of fds closed. */
  recvClose(b: number): number {
    const h = this.rHdrU32;
    h[this.#controllenIdx] = this.ctlLen; // the high word (glibc) / pad (musl) stays 0
    if (recvmsg(b, this.rHdrPtr, RECV_FLAGS) !== 1) throw new Error("raw recvmsg failed");
    const ctl = this.rCtlI32;
    if (h[this.#controllenIdx] === 0 || ctl[this.#cmsgTypeIdx] !== K.SCM_RIGHTS || ctl[this.#cmsgLevelIdx] !== K.SOL_SOCKET) {
      throw new Error("raw recvmsg: no SCM_RIGHTS");
    }
    const n = (ctl[this.#cmsgLenIdx]! - this.#headerLen) >> 2;
    const d = this.#dataIdx;
    for (let i = 0; i < n; i++) close(ctl[d + i]!);
    return n;
  }

  /** The whole round trip. */
  roundTrip(a: number, b: number): void {
    this.send(a);
    this.recvClose(b);
  }
}

/** socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC) through this file's own binding. */
export function rawSocketpair(): [number, number] {
  const sv = new Int32Array(2);
  if (lib.symbols.socketpair(K.AF_UNIX, K.SOCK_STREAM | K.SOCK_CLOEXEC, 0, sv) !== 0) throw new Error("raw socketpair failed");
  return [sv[0]!, sv[1]!];
}

export function rawClose(fd: number): number {
  return close(fd);
}
