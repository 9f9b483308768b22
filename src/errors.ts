/**
 * Error types. Two families:
 * - SystemError: a failed syscall, shaped like Node's system errors (code 'EAGAIN', errno 11,
 *   syscall 'recvmsg'). EINTR never reaches callers: every wrapper retries it.
 * - UnixAncillaryError: the library refused or rejected something. `code` is stable (ERR_UA_*), `kind`
 *   names the Rust io::ErrorKind the crate used (InvalidInput, InvalidData, WriteZero, ...), and
 *   messages match the crate's word for word where the crate has one.
 * Bad argument types throw plain TypeError/RangeError with code ERR_INVALID_ARG_TYPE/ERR_OUT_OF_RANGE.
 */

export type ErrorKind =
  | "InvalidInput"
  | "InvalidData"
  | "WriteZero"
  | "Unsupported"
  | "Closed"
  | "Aborted"
  | "TimedOut"
  | "PermissionDenied"
  | "Protocol"
  | "Other";

/** The stable `code` of every UnixAncillaryError (the README's error table says when each is thrown). */
export type UnixAncillaryErrorCode =
  /** Stream send with fds but no payload byte (the kernel would silently drop the fds). */
  | "ERR_UA_EMPTY_PAYLOAD"
  /** More fds than one sendmsg may carry on this ABI (Linux SCM_MAX_FD 253; musl 252). */
  | "ERR_UA_TOO_MANY_FDS"
  /** A low-level buffer is in receive mode and must be cleared before it can be sent. */
  | "ERR_UA_RECEIVE_BUFFER"
  /** SocketAncillary: buffer too small or not cleared after a receive (the crate's AncillaryError). */
  | "ERR_UA_BUFFER"
  /** MSG_CTRUNC: control data truncated; every fd of that receive was closed. */
  | "ERR_UA_ANCILLARY_TRUNCATED"
  /** MSG_TRUNC on a datagram/seqpacket convenience receive; every fd of that receive was closed. */
  | "ERR_UA_DATAGRAM_TRUNCATED"
  /** recvFdsExact got a different number of fds; every fd of that receive was closed. */
  | "ERR_UA_FD_COUNT_MISMATCH"
  /** The kernel accepted 0 bytes of a send that must make progress. */
  | "ERR_UA_WRITE_ZERO"
  /** An fd given to a send buffer was closed (or its number reused) before the send. */
  | "ERR_UA_STALE_FD"
  /** The OwnedFd or socket was already closed/released. */
  | "ERR_UA_CLOSED"
  /** Size arithmetic exceeded Number.MAX_SAFE_INTEGER. */
  | "ERR_UA_SIZE_OVERFLOW"
  /** The platform/kernel lacks the feature (e.g. SO_PASSRIGHTS before Linux 6.16). */
  | "ERR_UA_UNSUPPORTED"
  /** An async operation was cancelled by its AbortSignal. */
  | "ERR_UA_ABORTED"
  /** A wait timed out. */
  | "ERR_UA_TIMEOUT"
  /** A peer or message broke a protocol rule (handoff, systemd). */
  | "ERR_UA_PROTOCOL"
  /** A peer failed authentication (SO_PEERCRED policy). */
  | "ERR_UA_PEER_REJECTED"
  /** Another operation holds a resource that allows only one (e.g. one handoff at a time). */
  | "ERR_UA_BUSY"
  /** Pool: a worker slot crashed too often within the window; it is not restarted until the next reload. */
  | "ERR_UA_CRASH_LOOP"
  /** Pool: a worker failed to spawn, to become ready in time, or a successor supervisor failed. */
  | "ERR_UA_WORKER_FAILED";

const KIND: Record<UnixAncillaryErrorCode, ErrorKind> = {
  ERR_UA_EMPTY_PAYLOAD: "InvalidInput",
  ERR_UA_TOO_MANY_FDS: "InvalidInput",
  ERR_UA_RECEIVE_BUFFER: "InvalidInput",
  ERR_UA_BUFFER: "InvalidInput",
  ERR_UA_ANCILLARY_TRUNCATED: "InvalidData",
  ERR_UA_DATAGRAM_TRUNCATED: "InvalidData",
  ERR_UA_FD_COUNT_MISMATCH: "InvalidData",
  ERR_UA_WRITE_ZERO: "WriteZero",
  ERR_UA_STALE_FD: "InvalidInput",
  ERR_UA_CLOSED: "Closed",
  ERR_UA_SIZE_OVERFLOW: "InvalidInput",
  ERR_UA_UNSUPPORTED: "Unsupported",
  ERR_UA_ABORTED: "Aborted",
  ERR_UA_TIMEOUT: "TimedOut",
  ERR_UA_PROTOCOL: "Protocol",
  ERR_UA_PEER_REJECTED: "PermissionDenied",
  ERR_UA_BUSY: "Other",
  ERR_UA_CRASH_LOOP: "Other",
  ERR_UA_WORKER_FAILED: "Other",
};

/**
 * An error of this library (not of a syscall: those are SystemError). `code` is stable
 * (ERR_UA_*), `kind` is the Rust crate's io::ErrorKind name; messages say what to do.
 */
export class UnixAncillaryError extends Error {
  override name = "UnixAncillaryError";
  readonly code: UnixAncillaryErrorCode;
  readonly kind: ErrorKind;
  /**
   * Receive errors after a successful recvmsg (truncation, count mismatch): the payload bytes that
   * receive consumed, so a stream protocol can resynchronise. `data` holds a copy of them for the
   * allocating receives (recvFds*); the "Into"/vectored receives left them in the caller's buffers.
   */
  declare bytesRead?: number;
  declare data?: Uint8Array;
  constructor(code: UnixAncillaryErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.kind = KIND[code];
  }
}

/** The crate's exact messages, kept in one place so tests and docs can quote them. */
export const MESSAGES = {
  emptyStreamPayload: "SCM_RIGHTS over a Unix stream requires at least one payload byte",
  ancillaryTruncated: "ancillary data truncated; discard the incomplete message",
  datagramTruncated: "datagram payload truncated before it fit the receive buffer",
  exactCount: (n: number, observed: number) => `expected exactly ${n} file descriptor${n === 1 ? "" : "s"}, received ${observed}`,
  writeZeroFirst: "failed to send fd payload byte",
  writeZeroShort: "short write",
  ancillaryBuffer: "ancillary buffer too small or not cleared after receive",
  receiveBufferSend: "clear the receive buffer before building a send",
} as const;

/** errno -> name, filled by the platform layer for the running ABI. */
let errnoNames: ReadonlyMap<number, string> = new Map();
export function setErrnoNames(names: ReadonlyMap<number, string>): void {
  errnoNames = names;
}
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

const DESCRIPTIONS: Record<string, string> = {
  EPERM: "operation not permitted",
  ENOENT: "no such file or directory",
  ESRCH: "no such process",
  EINTR: "interrupted system call",
  EIO: "input/output error",
  EFAULT: "bad address",
  ENOSPC: "no space left on device",
  ENOSYS: "function not implemented",
  ENOTSUP: "operation not supported",
  EDESTADDRREQ: "destination address required",
  EPROTONOSUPPORT: "protocol not supported",
  EADDRNOTAVAIL: "address not available",
  ENETDOWN: "network is down",
  ECONNABORTED: "connection aborted",
  EISCONN: "socket is already connected",
  ETIMEDOUT: "connection timed out",
  EINPROGRESS: "operation in progress",
  EALREADY: "connection already in progress",
  EBADF: "bad file descriptor",
  EAGAIN: "resource temporarily unavailable",
  ENOMEM: "cannot allocate memory",
  EACCES: "permission denied",
  EINVAL: "invalid argument",
  EMFILE: "too many open files",
  ENFILE: "too many open files in system",
  EPIPE: "broken pipe",
  ENOTSOCK: "socket operation on non-socket",
  EMSGSIZE: "message too long",
  ENOPROTOOPT: "protocol not available",
  EOPNOTSUPP: "operation not supported",
  EADDRINUSE: "address already in use",
  ECONNRESET: "connection reset by peer",
  ENOBUFS: "no buffer space available",
  ENOTCONN: "socket is not connected",
  ETOOMANYREFS: "too many references",
  ECONNREFUSED: "connection refused",
  ENAMETOOLONG: "file name too long",
  EPROTOTYPE: "protocol wrong type for socket",
  EAFNOSUPPORT: "address family not supported",
};

/** A failed syscall, like Node's SystemError: `code`, `errno`, `syscall`, optional `path`. */
export class SystemError extends Error {
  override name = "SystemError";
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  readonly path?: string;
  constructor(syscall: string, errno: number, path?: string) {
    const code = errnoName(errno);
    super(`${syscall} failed: ${code} (${DESCRIPTIONS[code] ?? `errno ${errno}`})${path !== undefined ? ` '${path}'` : ""}`);
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
    if (path !== undefined) this.path = path;
  }
}

/** How an argument is named in an error message (its value for primitives, its class otherwise). */
export function describe(v: unknown): string {
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
  if (v === null) return "null";
  if (v === undefined) return "undefined";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "function") return "a function";
  return (v as object).constructor?.name ? `an instance of ${(v as object).constructor.name}` : "an object";
}

export function invalidArgType(name: string, expected: string, got: string): TypeError {
  const e = new TypeError(`The "${name}" argument must be ${expected}. Received ${got}`);
  (e as TypeError & { code: string }).code = "ERR_INVALID_ARG_TYPE";
  return e;
}

export function outOfRange(name: string, range: string, got: string): RangeError {
  const e = new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${got}`);
  (e as RangeError & { code: string }).code = "ERR_OUT_OF_RANGE";
  return e;
}

export function invalidArgValue(name: string, reason: string): TypeError {
  const e = new TypeError(`The argument "${name}" ${reason}`);
  (e as TypeError & { code: string }).code = "ERR_INVALID_ARG_VALUE";
  return e;
}

export function closedError(what: string): UnixAncillaryError {
  return new UnixAncillaryError("ERR_UA_CLOSED", `${what} is closed`);
}
