/**
 * The handoff wire protocol (version 2). One frame per SOCK_SEQPACKET message:
 *
 *   offset size  field
 *   0      4     magic    "UAHO" (0x55 0x41 0x48 0x4f)
 *   4      1     version  2
 *   5      1     type     1 hello | 2 offer | 3 ready | 4 abort | 5 done | 6 serving
 *   6      2     flags    0 (anything else is rejected)
 *   8      2     fdCount  fds attached to this message with SCM_RIGHTS (offer only; <= MAX_FDS)
 *   10     2     reserved 0
 *   12     4     length   payload bytes that follow (<= MAX_PAYLOAD)
 *   16     ...   payload  UTF-8 JSON object
 *
 * Integers are big-endian. A receiver reads with a buffer of exactly HEADER + MAX_PAYLOAD bytes and
 * keeps at most MAX_FDS fds: a longer message is truncated (MSG_TRUNC) and rejected with every fd of
 * it closed (msg-io.ts); fds beyond MAX_FDS are closed on arrival, and the frame then fails the fd
 * count check below. Only an offer frame may carry fds at all. The attached fd count must equal
 * `fdCount`, the message length must equal 16 + `length`, and the payload must be a JSON object
 * with the fields its type requires; anything else is ERR_UA_PROTOCOL.
 *
 * Conversation (new side = upgrader, old side = running server):
 *   new -> old  hello  { pid, want? }
 *   old -> new  offer  { pid, listeners: [{ name, family, address, port, type }] } + one fd per listener, in order
 *   new -> old  ready    { pid, adopted: [names] }        (adopted and warm, but NOT accepting yet)
 *   old -> new  done     { pid }                          (the old side has stopped accepting)
 *   new -> old  serving  { pid }                          (the new side accepts and passed its self-check:
 *                                                         the commit; the old side drains)
 *   either      abort    { code, message }                (then the connection closes)
 * If the new side dies or aborts between done and serving, the old side accepts again and carries on.
 * Version 1 had no serving frame (the successor accepted before ready); it is refused.
 */
import { UnixAncillaryError } from "../errors.ts";
import { MAX_FD_NAME, validFdName } from "../systemd.ts";
import type { ListenerFamily, ListenerType } from "../sockinfo.ts";

/** The handoff wire protocol version; both sides must speak the same (docs/handoff.md, "Wire protocol"). */
export const PROTOCOL_VERSION = 2;
export const MAGIC = 0x5541484f;
export const HEADER_SIZE = 16;
export const MAX_PAYLOAD = 64 * 1024;
export const MAX_FDS = 64;
export const MAX_FRAME = HEADER_SIZE + MAX_PAYLOAD;
/** Longest listener name (UTF-16 units); names are also limited to printable ASCII without ':' (systemd FDNAME rules). */
export const MAX_NAME = MAX_FD_NAME;

// A plain enum, not `const enum`: consumers with isolatedModules/verbatimModuleSyntax cannot use an ambient const enum from the published .d.ts.
export enum FrameType {
  Hello = 1,
  Offer = 2,
  Ready = 3,
  Abort = 4,
  Done = 5,
  Serving = 6,
}

export const TYPE_NAMES: Record<number, string> = { 1: "hello", 2: "offer", 3: "ready", 4: "abort", 5: "done", 6: "serving" };

export interface OfferedListener {
  name: string;
  family: ListenerFamily;
  address: string;
  port: number;
  type: ListenerType;
}

export interface HelloPayload {
  pid: number;
  want?: string[];
}
export interface OfferPayload {
  pid: number;
  listeners: OfferedListener[];
}
export interface ReadyPayload {
  pid: number;
  adopted: string[];
}
export interface AbortPayload {
  code: string;
  message: string;
}
export interface DonePayload {
  pid: number;
}

export interface Frame {
  type: FrameType;
  payload: Record<string, unknown>;
}

export function protocolError(message: string): UnixAncillaryError {
  return new UnixAncillaryError("ERR_UA_PROTOCOL", `handoff protocol: ${message}`);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export function encodeFrame(type: FrameType, payload: object, fdCount = 0): Uint8Array {
  const body = encoder.encode(JSON.stringify(payload));
  if (body.byteLength > MAX_PAYLOAD) throw protocolError(`${TYPE_NAMES[type]} payload is ${body.byteLength} bytes; the limit is ${MAX_PAYLOAD}`);
  if (fdCount > MAX_FDS) throw protocolError(`${fdCount} fds in one frame; the limit is ${MAX_FDS}`);
  const out = new Uint8Array(HEADER_SIZE + body.byteLength);
  const v = new DataView(out.buffer);
  v.setUint32(0, MAGIC, false);
  v.setUint8(4, PROTOCOL_VERSION);
  v.setUint8(5, type);
  v.setUint16(6, 0, false);
  v.setUint16(8, fdCount, false);
  v.setUint16(10, 0, false);
  v.setUint32(12, body.byteLength, false);
  out.set(body, HEADER_SIZE);
  return out;
}

/** Parses and validates one received message. `fdsAttached` is how many fds came with it. */
export function decodeFrame(msg: Uint8Array, fdsAttached: number): Frame {
  if (msg.byteLength < HEADER_SIZE) throw protocolError(`frame of ${msg.byteLength} bytes is shorter than the ${HEADER_SIZE}-byte header`);
  const v = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const magic = v.getUint32(0, false);
  if (magic !== MAGIC) throw protocolError(`bad magic 0x${magic.toString(16).padStart(8, "0")} (not a unix-ancillary handoff peer)`);
  const version = v.getUint8(4);
  if (version !== PROTOCOL_VERSION) throw protocolError(`unsupported protocol version ${version} (this side speaks ${PROTOCOL_VERSION})`);
  const type = v.getUint8(5);
  if (!(type in TYPE_NAMES)) throw protocolError(`unknown frame type ${type}`);
  const flags = v.getUint16(6, false);
  if (flags !== 0) throw protocolError(`non-zero flags 0x${flags.toString(16)}`);
  const fdCount = v.getUint16(8, false);
  if (fdCount > MAX_FDS) throw protocolError(`header announces ${fdCount} fds; the limit is ${MAX_FDS}`);
  if (v.getUint16(10, false) !== 0) throw protocolError("non-zero reserved field");
  const length = v.getUint32(12, false);
  if (length > MAX_PAYLOAD) throw protocolError(`payload length ${length} exceeds ${MAX_PAYLOAD}`);
  if (msg.byteLength !== HEADER_SIZE + length) throw protocolError(`frame is ${msg.byteLength} bytes but the header says ${HEADER_SIZE + length}`);
  if (fdCount !== fdsAttached) throw protocolError(`header announces ${fdCount} fds but ${fdsAttached} arrived`);
  if (type !== FrameType.Offer && fdCount !== 0) throw protocolError(`${TYPE_NAMES[type]} frames carry no fds`);
  let payload: unknown;
  try {
    payload = JSON.parse(decoder.decode(msg.subarray(HEADER_SIZE)));
  } catch (e) {
    throw protocolError(`payload is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (payload === null || typeof payload !== "object" || Array.isArray(payload)) throw protocolError("payload is not a JSON object");
  const p = payload as Record<string, unknown>;
  switch (type) {
    case FrameType.Hello:
    case FrameType.Ready:
    case FrameType.Done:
    case FrameType.Serving:
    case FrameType.Offer:
      if (!Number.isInteger(p.pid) || (p.pid as number) <= 0) throw protocolError(`${TYPE_NAMES[type]}: "pid" must be a positive integer`);
      break;
    case FrameType.Abort:
      if (typeof p.code !== "string" || typeof p.message !== "string") throw protocolError('abort: "code" and "message" must be strings');
      break;
  }
  if (type === FrameType.Hello && p.want !== undefined) {
    if (!Array.isArray(p.want) || p.want.length > MAX_FDS || !p.want.every((n) => typeof n === "string" && validName(n))) throw protocolError('hello: "want" must be a list of listener names');
  }
  if (type === FrameType.Ready) {
    if (!Array.isArray(p.adopted) || !p.adopted.every((n) => typeof n === "string")) throw protocolError('ready: "adopted" must be a list of names');
  }
  if (type === FrameType.Offer) {
    const ls = p.listeners;
    if (!Array.isArray(ls)) throw protocolError('offer: "listeners" must be a list');
    if (ls.length !== fdCount) throw protocolError(`offer lists ${ls.length} listeners but carries ${fdCount} fds`);
    const seen = new Set<string>();
    for (const l of ls) validateOffered(l, seen);
  }
  return { type: type as FrameType, payload: p };
}

/** Listener names follow systemd's FDNAME rules, so a name can travel through the fd store unchanged. */
export const validName = validFdName;

function validateOffered(l: unknown, seen: Set<string>): asserts l is OfferedListener {
  if (l === null || typeof l !== "object") throw protocolError("offer: listener entry is not an object");
  const o = l as Record<string, unknown>;
  if (typeof o.name !== "string" || !validName(o.name)) throw protocolError(`offer: invalid listener name ${JSON.stringify(o.name)}`);
  if (seen.has(o.name)) throw protocolError(`offer: duplicate listener name "${o.name}"`);
  seen.add(o.name);
  if (o.family !== "ipv4" && o.family !== "ipv6" && o.family !== "unix") throw protocolError(`offer: listener "${o.name}" has invalid family`);
  if (typeof o.address !== "string" || o.address.length > 4096) throw protocolError(`offer: listener "${o.name}" has invalid address`);
  if (!Number.isInteger(o.port) || (o.port as number) < 0 || (o.port as number) > 65535) throw protocolError(`offer: listener "${o.name}" has invalid port`);
  if (o.type !== "stream" && o.type !== "datagram" && o.type !== "seqpacket") throw protocolError(`offer: listener "${o.name}" has invalid type`);
}
