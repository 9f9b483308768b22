/**
 * Argument coercion and validation for the socket layer: payloads, receive buffers, fd lists, counts
 * and options. Everything a caller passes is turned into plain values here, before any engine call.
 *
 * Ownership contract: fd lists are borrowed (numbers are read, nothing is closed), except holdFds,
 * whose duplicates belong to the caller of holdFds until it closes them.
 */
import { adopt, closeAll, fdAt, type OwnedFd, type FdLike } from "../owned-fd.ts";
import * as sys from "../sys.ts";
import { invalidArgType, outOfRange } from "../errors.ts";
import { describe } from "../cmsg/sizes.ts";
import { isAbortSignal, isArrayBuffer, isPlainUint8Array, isSharedArrayBuffer, plainBytesOfView } from "../intrinsics.ts";

/** Largest maxFds a receive accepts (the crate's HARD_CEILING). */
export const MAX_RECEIVE_FDS = 1 << 20;

const encoder = new TextEncoder();

/** Payload accepted by sends: bytes (any ArrayBufferView or ArrayBuffer) or a string (sent as UTF-8). */
export type Payload = ArrayBufferView | ArrayBuffer | string;

/**
 * Coercion returns a plain Uint8Array (never a caller's subclass) located through the built-in getters,
 * and the engine reads every length and offset through them too (src/intrinsics.ts): a view that lies
 * about byteLength/byteOffset/buffer/length cannot steer a syscall outside its own memory.
 */
export function toBytes(data: unknown, name = "data"): Uint8Array {
  if (isPlainUint8Array(data)) return data;
  if (typeof data === "string") return encoder.encode(data);
  const view = plainBytesOfView(data);
  if (view !== null) return view;
  if (isArrayBuffer(data) || isSharedArrayBuffer(data)) return new Uint8Array(data);
  throw invalidArgType(name, "a string, an ArrayBuffer or an ArrayBufferView", describe(data));
}

export function toByteList(buffers: unknown, name: string): Uint8Array[] {
  if (!Array.isArray(buffers)) throw invalidArgType(name, "an array of ArrayBufferViews", describe(buffers));
  return buffers.map((b, i) => toBytes(b, `${name}[${i}]`));
}

/** A buffer that receives write into (strings are not accepted: receives need memory to fill). */
export function toWritable(buffer: unknown, name = "buffer"): Uint8Array {
  if (isPlainUint8Array(buffer)) return buffer;
  const view = plainBytesOfView(buffer);
  if (view !== null) return view;
  if (isArrayBuffer(buffer)) return new Uint8Array(buffer);
  throw invalidArgType(name, "an ArrayBuffer or an ArrayBufferView", describe(buffer));
}

export function checkFdList(fds: unknown, name = "fds"): readonly FdLike[] {
  if (fds === undefined) return EMPTY_FDS;
  if (!Array.isArray(fds)) throw invalidArgType(name, "an array of fds (numbers, OwnedFd or { fd })", describe(fds));
  return fds as FdLike[];
}
const EMPTY_FDS: readonly FdLike[] = Object.freeze([]);

/**
 * The numbers an fd list lends right now, in a new array (the async sends resolve once, at call time:
 * `{ fd }` getters run once, and a caller that edits its array afterwards changes nothing).
 */
export function resolveFdList(list: readonly FdLike[]): readonly number[] {
  const n = list.length;
  if (n === 0) return EMPTY_NUMBERS;
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = fdAt(list, i, "fds");
  return out;
}
const EMPTY_NUMBERS: readonly number[] = Object.freeze([]);

/**
 * Own duplicates (F_DUPFD_CLOEXEC) of `numbers`, for an async send that has to wait: the caller may
 * close its fds right after the call, and a number reused meanwhile by another file must not reach
 * the peer. The caller of holdFds closes them once the send settles. On failure none stay open.
 */
export function holdFds(numbers: readonly number[]): OwnedFd[] {
  const held: OwnedFd[] = [];
  try {
    for (const n of numbers) held.push(adopt(sys.dupCloexec(n)));
  } catch (e) {
    closeAll(held);
    throw e;
  }
  return held;
}

export function checkMaxFds(n: unknown, name = "maxFds"): number {
  if (typeof n !== "number" || !Number.isInteger(n)) throw invalidArgType(name, "an integer", describe(n));
  if (n < 0 || n > MAX_RECEIVE_FDS) throw outOfRange(name, `>= 0 and <= ${MAX_RECEIVE_FDS}`, String(n));
  return n;
}

/** Options of the receives: data buffer size and an AbortSignal (async only). */
export interface RecvOptions {
  /** Size of the data buffer the allocating receives use (default 4096 for streams, 65536 otherwise). */
  bufferSize?: number;
}

/** Options of every async operation. */
export interface AsyncOptions {
  /** Cancels the operation: it rejects with ERR_UA_ABORTED (the signal's reason as `cause`). */
  signal?: AbortSignal;
}

/** Options of recvFdsBatch. */
export interface BatchOptions extends RecvOptions, AsyncOptions {
  /** At most this many messages per batch (default 64, at most 4096). */
  maxMessages?: number;
}

export const DEFAULT_BATCH_MESSAGES = 64;
const MAX_BATCH_MESSAGES = 4096;

export function maxMessagesOf(opts: BatchOptions | undefined): number {
  const n = opts?.maxMessages;
  if (n === undefined) return DEFAULT_BATCH_MESSAGES;
  if (typeof n !== "number") throw invalidArgType("options.maxMessages", "an integer", describe(n));
  if (!Number.isInteger(n) || n < 1 || n > MAX_BATCH_MESSAGES) throw outOfRange("options.maxMessages", `>= 1 and <= ${MAX_BATCH_MESSAGES}`, String(n));
  return n;
}

export function signalOf(opts: AsyncOptions | undefined): AbortSignal | undefined {
  if (opts === undefined) return undefined;
  if (opts === null || typeof opts !== "object") throw invalidArgType("options", "an object", describe(opts));
  const s = opts.signal;
  if (s !== undefined && !isAbortSignal(s)) throw invalidArgType("options.signal", "an AbortSignal", describe(s));
  return s;
}
