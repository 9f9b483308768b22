/**
 * The control-message registry: every control-message kind the library understands, declared once per
 * ABI. A kind states its cmsg_level/cmsg_type (from the platform table), its payload layout, whether its
 * payload slots are fds the kernel installed, which socket option makes the kernel attach it to every
 * received message, and how to encode and decode it. The encoder, the parser, the receive engine
 * (msg-io.ts) and SocketAncillary all read this table; adding a kind means adding an entry here and its
 * numbers in src/platform/*.
 *
 * Ownership contract: nothing here creates an OwnedFd. `message()` receives the fds the engine already
 * owns for that message and either keeps them in the message it returns or closes them; a message of a
 * kind not in the table is yielded as raw bytes and never turned into fds.
 */
import type { Abi } from "../platform/abi.ts";
import type { OwnedFd } from "../owned-fd.ts";
import { ScmRights } from "./scm-rights.ts";
import { ScmCredentials } from "./scm-credentials.ts";

/** Bytes an fd occupies in an fd-carrying payload (a native-endian 32-bit int). */
export const FD_SIZE = 4;

const TWO_32 = 0x1_0000_0000;

/**
 * One received control message, as the low-level messages() iterator yields it. Keep a default branch:
 * kinds may be added. Every fd-carrying kind yields its fds as an ScmRights draining iterator, so what
 * a caller skips is closed by the buffer's clear()/dispose, never leaked.
 */
export type AncillaryMessage =
  /** SCM_RIGHTS: the fds, as a draining iterator (what you do not take is closed by clear()/dispose). */
  | { readonly type: "rights"; readonly fds: ScmRights }
  /** SCM_CREDENTIALS (Linux; SO_PASSCRED or sent explicitly). */
  | { readonly type: "credentials"; readonly credentials: ScmCredentials }
  /**
   * SCM_PIDFD (Linux >= 6.5, SO_PASSPIDFD on): the sender's pidfd, as a draining iterator like rights
   * (`const [pidfd] = m.fds`); not taken, it is closed by clear()/dispose.
   */
  | { readonly type: "pidfd"; readonly fds: ScmRights }
  /** SCM_TIMESTAMP / SCM_TIMESTAMPNS (SO_TIMESTAMP / SO_TIMESTAMPNS): the kernel's receive time. */
  | { readonly type: "timestamp"; readonly seconds: number; readonly nanoseconds: number }
  /** Any kind the registry does not know (or a known kind with a short payload): a copy of its payload bytes. */
  | { readonly type: "unknown"; readonly level: number; readonly cmsgType: number; readonly data: Uint8Array };

/** A message as plain data, without owners (parseControlMessages: tests, fuzzing, diagnostics). */
export type ParsedCmsg =
  | { readonly type: "rights"; readonly fds: number[] }
  | { readonly type: "credentials"; readonly pid: number; readonly uid: number; readonly gid: number }
  | { readonly type: "pidfd"; readonly fds: number[] }
  | { readonly type: "timestamp"; readonly seconds: number; readonly nanoseconds: number }
  | { readonly type: "other"; readonly level: number; readonly cmsgType: number; readonly dataOffset: number; readonly dataLength: number };

export interface CmsgKind {
  /** The `type` of the messages it yields. */
  readonly name: string;
  readonly level: number;
  readonly type: number;
  /** Every whole 4-byte slot of the payload is an fd the kernel installed in the receiving process. */
  readonly carriesFds: boolean;
  /** Payload bytes of a fixed-layout kind (0 for a variable one); a shorter payload is yielded as unknown. */
  readonly payloadSize: number;
  /**
   * The SOL_SOCKET option that makes the kernel attach this kind to every received message (-1: only a
   * sender attaches it). High-level receives reserve CMSG_SPACE(payloadSize) for each such kind.
   */
  readonly attachedBy: number;
  /** Plain fields of a payload of at least payloadSize bytes at `at` (no owners). */
  parse(view: DataView, at: number, length: number): ParsedCmsg;
  /** The public message. Takes over `fds` (this payload's fds, already owned): keeps them or closes them. */
  message(view: DataView, at: number, length: number, fds: OwnedFd[]): AncillaryMessage;
}

/** The registry for one ABI. */
export interface CmsgKinds {
  readonly rights: CmsgKind;
  /** null where the ABI has no SCM_CREDENTIALS. */
  readonly credentials: CmsgKind | null;
  /** Every kind this ABI has. */
  readonly all: readonly CmsgKind[];
  /** The kind of a (level, type) pair, or null for an unknown one. */
  find(level: number, type: number): CmsgKind | null;
  /** Writes an SCM_RIGHTS payload of `count` fd numbers at `at`. */
  encodeRights(view: DataView, at: number, fds: ArrayLike<number>, count: number): void;
  /** Writes an SCM_CREDENTIALS payload at `at` (only where `credentials` is non-null). */
  encodeCredentials(view: DataView, at: number, pid: number, uid: number, gid: number): void;
}

/** The fd numbers of an fd-carrying payload, negative slots skipped (a trailing partial slot is ignored). */
function fdNumbers(view: DataView, at: number, length: number): number[] {
  const out: number[] = [];
  for (let i = 0, n = Math.floor(length / FD_SIZE); i < n; i++) {
    const fd = view.getInt32(at + i * FD_SIZE, true);
    if (fd >= 0) out.push(fd);
  }
  return out;
}

/** A signed 64-bit little-endian integer as a number (exact below 2^53: any real time in seconds). */
function readInt64(view: DataView, at: number): number {
  return view.getInt32(at + 4, true) * TWO_32 + view.getUint32(at, true);
}

/** The raw form of a message: a copy of its payload, so it outlives the control buffer's next use. */
export function unknownMessage(view: DataView, level: number, type: number, at: number, length: number): AncillaryMessage {
  const start = view.byteOffset + at;
  return { type: "unknown", level, cmsgType: type, data: new Uint8Array(view.buffer.slice(start, start + length)) };
}

function build(abi: Abi): CmsgKinds {
  const k = abi.constants;
  const all: CmsgKind[] = [];

  const rights: CmsgKind = {
    name: "rights",
    level: k.SOL_SOCKET,
    type: k.SCM_RIGHTS,
    carriesFds: true,
    payloadSize: 0,
    attachedBy: -1,
    parse: (view, at, length) => ({ type: "rights", fds: fdNumbers(view, at, length) }),
    message: (_view, _at, _length, fds) => ({ type: "rights", fds: new ScmRights(fds) }),
  };
  all.push(rights);

  const u = abi.ucred;
  let credentials: CmsgKind | null = null;
  if (u !== null && k.SCM_CREDENTIALS >= 0) {
    const read = (view: DataView, at: number) => ({
      pid: view.getInt32(at + u.pid.offset, true),
      uid: view.getUint32(at + u.uid.offset, true),
      gid: view.getUint32(at + u.gid.offset, true),
    });
    credentials = {
      name: "credentials",
      level: k.SOL_SOCKET,
      type: k.SCM_CREDENTIALS,
      carriesFds: false,
      payloadSize: u.size,
      attachedBy: k.SO_PASSCRED,
      parse: (view, at) => ({ type: "credentials", ...read(view, at) }),
      message: (view, at) => {
        const { pid, uid, gid } = read(view, at);
        return { type: "credentials", credentials: new ScmCredentials(pid, uid, gid) };
      },
    };
    all.push(credentials);
  }

  // SCM_PIDFD: one int, a pidfd the kernel installed for the sender's process (Linux >= 6.5).
  if (k.SCM_PIDFD >= 0 && k.SO_PASSPIDFD >= 0) {
    all.push({
      name: "pidfd",
      level: k.SOL_SOCKET,
      type: k.SCM_PIDFD,
      carriesFds: true,
      payloadSize: FD_SIZE,
      attachedBy: k.SO_PASSPIDFD,
      parse: (view, at, length) => ({ type: "pidfd", fds: fdNumbers(view, at, length) }),
      message: (view, at, length, fds) => {
        if (fds.length === 1) return { type: "pidfd", fds: new ScmRights(fds) };
        // not the kernel's shape (it installs exactly one): own nothing, report the bytes
        for (const fd of fds) fd.close();
        return unknownMessage(view, k.SOL_SOCKET, k.SCM_PIDFD, at, length);
      },
    });
  }

  // Receive timestamps: struct timeval (µs) or struct timespec (ns), normalised to seconds + nanoseconds.
  const timestamp = (type: number, option: number, layout: { size: number; sec: { offset: number }; frac: { offset: number } }, nsPerUnit: number): void => {
    if (type < 0 || option < 0) return;
    const read = (view: DataView, at: number) => ({
      seconds: readInt64(view, at + layout.sec.offset),
      nanoseconds: view.getInt32(at + layout.frac.offset, true) * nsPerUnit,
    });
    all.push({
      name: "timestamp",
      level: k.SOL_SOCKET,
      type,
      carriesFds: false,
      payloadSize: layout.size,
      attachedBy: option,
      parse: (view, at) => ({ type: "timestamp", ...read(view, at) }),
      message: (view, at) => ({ type: "timestamp", ...read(view, at) }),
    });
  };
  const tv = { size: abi.timeval.size, sec: abi.timeval.sec, frac: abi.timeval.usec };
  timestamp(k.SCM_TIMESTAMP, k.SO_TIMESTAMP, tv, 1000);
  timestamp(k.SCM_TIMESTAMP_NEW, k.SO_TIMESTAMP_NEW, tv, 1000);
  const ts = abi.timespec;
  if (ts !== null) {
    const layout = { size: ts.size, sec: ts.sec, frac: ts.nsec };
    timestamp(k.SCM_TIMESTAMPNS, k.SO_TIMESTAMPNS, layout, 1);
    timestamp(k.SCM_TIMESTAMPNS_NEW, k.SO_TIMESTAMPNS_NEW, layout, 1);
  }

  return {
    rights,
    credentials,
    all,
    find(level, type) {
      for (const kind of all) if (kind.type === type && kind.level === level) return kind;
      return null;
    },
    encodeRights(view, at, fds, count) {
      for (let i = 0; i < count; i++) view.setInt32(at + i * FD_SIZE, fds[i]!, true);
    },
    encodeCredentials(view, at, pid, uid, gid) {
      if (u === null) return;
      view.setInt32(at + u.pid.offset, pid, true);
      view.setUint32(at + u.uid.offset, uid >>> 0, true);
      view.setUint32(at + u.gid.offset, gid >>> 0, true);
    },
  };
}

const cache = new WeakMap<Abi, CmsgKinds>();

/** The registry of `abi` (built once per table). */
export function kindsOf(abi: Abi): CmsgKinds {
  let kinds = cache.get(abi);
  if (kinds === undefined) cache.set(abi, (kinds = build(abi)));
  return kinds;
}
