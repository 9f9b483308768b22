/**
 * Pure codec unit tests for the running ABI (no socket, no kernel): sizing (docs/design.md, "Wire format"),
 * the encoder, the parser rules one at a time with hand-built bytes,
 * and the platform RLIMIT clamp.
 */
import { describe, expect, test } from "bun:test";
import { abi } from "../src/platform/index.ts";
import {
  appendCredentials,
  appendRights,
  bufferSizeForCredentials,
  bufferSizeForRights,
  CmsgCursor,
  cmsgLen,
  cmsgSpace,
  parseControlMessages,
  receiveControlSize,
  viewOf,
} from "../src/cmsg/index.ts";
import { SocketAncillary } from "../src/ancillary.ts";
import { ScmCredentials } from "../src/credentials.ts";
import { UnixAncillaryError, MESSAGES } from "../src/errors.ts";
import { clampNofile } from "../src/msg-io.ts";

const C = abi.cmsg;
const K = abi.constants;
const H = C.headerLen;
const DIRTY = 0xaa;

/**
 * Runs test/fixtures/parser-termination.ts in a child with a time limit. A parser that loops forever
 * then fails this check instead of hanging the whole run; later parser tests refuse to run in-process
 * (requireTermination) so they cannot hang either.
 */
const TERMINATION_FIXTURE = new URL("./fixtures/parser-termination.ts", import.meta.url).pathname;
let parserTerminates: boolean | null = null;
function checkTerminationInChild(seed: number, randomCases: number): void {
  const r = Bun.spawnSync({ cmd: [process.execPath, TERMINATION_FIXTURE, String(seed), String(randomCases)], timeout: 20_000, stdout: "pipe", stderr: "pipe" });
  const out = r.stdout.toString().trim();
  parserTerminates = r.exitCode === 0 && out.startsWith("ok ");
  if (!parserTerminates) {
    throw new Error(`parser did not terminate/finish in a child within 20 s (exit ${r.exitCode}, signal ${r.signalCode}): ${out} ${r.stderr.toString().slice(0, 500)}`);
  }
}
function requireTermination(): void {
  if (parserTerminates !== true) throw new Error("not run in-process: the parser failed the child-process termination check");
}

function expectUa(f: () => unknown, code: string): UnixAncillaryError {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(UnixAncillaryError);
  expect((err as UnixAncillaryError).code).toBe(code as never);
  return err as UnixAncillaryError;
}

/** Writes a cmsg header by hand at `at` (independent of the library's writer). */
function putHeader(dv: DataView, at: number, len: number, level: number, type: number): void {
  if (C.len.size === 8) {
    dv.setUint32(at + C.len.offset, len >>> 0, true);
    dv.setUint32(at + C.len.offset + 4, Math.floor(len / 2 ** 32), true);
  } else {
    dv.setUint32(at + C.len.offset, len >>> 0, true);
  }
  dv.setInt32(at + C.level.offset, level, true);
  dv.setInt32(at + C.type.offset, type, true);
}

/** A hand-built control area: a list of messages each with explicit cmsg_len and raw payload bytes. */
function build(msgs: { len?: number; level?: number; type?: number; payload: number[] | Uint8Array; pad?: boolean }[], extra = 0): Uint8Array {
  let total = 0;
  for (const m of msgs) total += m.pad === false ? H + m.payload.length : cmsgSpace(abi, m.payload.length);
  const bytes = new Uint8Array(total + extra);
  const dv = viewOf(bytes);
  let at = 0;
  for (const m of msgs) {
    putHeader(dv, at, m.len ?? H + m.payload.length, m.level ?? K.SOL_SOCKET, m.type ?? K.SCM_RIGHTS);
    bytes.set(m.payload, at + H);
    at += m.pad === false ? H + m.payload.length : cmsgSpace(abi, m.payload.length);
  }
  return bytes;
}

function fdBytes(...fds: number[]): Uint8Array {
  const b = new Uint8Array(fds.length * 4);
  const dv = viewOf(b);
  fds.forEach((fd, i) => dv.setInt32(i * 4, fd, true));
  return b;
}

describe("sizing (running ABI)", () => {
  test("header/alignment facts of this ABI", () => {
    if (abi.os === "linux") {
      expect(C.headerLen).toBe(16);
      expect(C.headerSize).toBe(16);
      expect(C.align).toBe(8);
    }
    expect(cmsgLen(abi, 0)).toBe(H);
    expect(cmsgSpace(abi, 1) - cmsgSpace(abi, 0)).toBe(C.align);
  });

  test("bufferSizeForRights = header_len + roundUp(4n, align)", () => {
    const expected = (n: number) => H + Math.ceil((4 * n) / C.align) * C.align;
    for (const n of [0, 1, 2, 3, 4, 5, 16, 252, 253, 254, 1000]) {
      expect(bufferSizeForRights(abi, n)).toBe(expected(n));
      expect(SocketAncillary.bufferSizeForRights(n)).toBe(expected(n));
    }
    if (abi.os === "linux") {
      expect(SocketAncillary.bufferSizeForRights(0)).toBe(16);
      expect(SocketAncillary.bufferSizeForRights(1)).toBe(24);
      expect(SocketAncillary.bufferSizeForRights(2)).toBe(24);
      expect(SocketAncillary.bufferSizeForRights(3)).toBe(32);
      expect(SocketAncillary.bufferSizeForRights(253)).toBe(1032);
    }
    // crate 5.5.6 buffer_size_calculation
    expect(SocketAncillary.bufferSizeForRights(1)).toBeGreaterThan(0);
    expect(SocketAncillary.bufferSizeForRights(4)).toBeGreaterThan(SocketAncillary.bufferSizeForRights(1));
  });

  test("bufferSizeForCredentials = CMSG_SPACE(12) (32 on Linux)", () => {
    if (abi.os !== "linux") return;
    expect(bufferSizeForCredentials(abi)).toBe(32);
    expect(SocketAncillary.bufferSizeForCredentials()).toBe(32);
  });

  test("high-level receive control size: rights(max(N,253)) + creds (1064 on Linux)", () => {
    if (abi.os !== "linux") return;
    expect(receiveControlSize(abi, 0, 253)).toBe(1064);
    expect(receiveControlSize(abi, 1, 253)).toBe(1064);
    expect(receiveControlSize(abi, 253, 253)).toBe(1064);
    expect(receiveControlSize(abi, 1000, 253)).toBe(16 + 4000 + 32);
  });

  test("overflow throws ERR_UA_SIZE_OVERFLOW (the crate panics)", () => {
    for (const n of [2 ** 51, 2 ** 52, Number.MAX_SAFE_INTEGER]) {
      const e = expectUa(() => bufferSizeForRights(abi, n), "ERR_UA_SIZE_OVERFLOW");
      expect(e.kind).toBe("InvalidInput");
      expect(e.message).toBe("ancillary buffer size overflow");
      expectUa(() => SocketAncillary.bufferSizeForRights(n), "ERR_UA_SIZE_OVERFLOW");
    }
    // the largest count that still fits is fine
    const maxOk = Math.floor((Number.MAX_SAFE_INTEGER - H - C.align) / 4);
    expect(Number.isSafeInteger(bufferSizeForRights(abi, maxOk))).toBe(true);
    expectUa(() => receiveControlSize(abi, 2 ** 51, 253), "ERR_UA_SIZE_OVERFLOW");
  });

  test("non-integer counts → TypeError ERR_INVALID_ARG_TYPE, negative → RangeError ERR_OUT_OF_RANGE", () => {
    for (const bad of [1.5, NaN, Infinity, "3", null, undefined]) {
      let err: unknown;
      try {
        bufferSizeForRights(abi, bad as number);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TypeError);
      expect((err as TypeError & { code?: string }).code).toBe("ERR_INVALID_ARG_TYPE");
    }
    for (const bad of [-1, -1024]) {
      let err: unknown;
      try {
        bufferSizeForRights(abi, bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(RangeError);
      expect((err as RangeError & { code?: string }).code).toBe("ERR_OUT_OF_RANGE");
    }
  });
});

describe("encoder", () => {
  test("appendRights zero-fills its region and writes each field at the ABI offset", () => {
    for (let off = 0; off <= 8; off++) {
      const backing = new Uint8Array(off + 64).fill(DIRTY);
      const bytes = backing.subarray(off);
      const end = appendRights(abi, bytes, viewOf(bytes), 0, [0x01020304, 7]);
      expect(end).toBe(cmsgSpace(abi, 8));
      // bytes before the slice and after the message are untouched
      for (let i = 0; i < off; i++) expect(backing[i]).toBe(DIRTY);
      for (let i = end; i < bytes.length; i++) expect(bytes[i]).toBe(DIRTY);
      const expected = new Uint8Array(end); // zeros
      const dv = viewOf(expected);
      putHeader(dv, 0, H + 8, K.SOL_SOCKET, K.SCM_RIGHTS);
      dv.setInt32(H, 0x01020304, true);
      dv.setInt32(H + 4, 7, true);
      expect(Array.from(bytes.subarray(0, end))).toEqual(Array.from(expected));
    }
  });

  test("Linux byte image of one rights message (hand-written)", () => {
    if (abi.os !== "linux") return;
    const bytes = new Uint8Array(24).fill(DIRTY);
    expect(appendRights(abi, bytes, viewOf(bytes), 0, [0x01020304])).toBe(24);
    expect(Array.from(bytes)).toEqual([20, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 4, 3, 2, 1, 0, 0, 0, 0]);
  });

  test("too-small buffer: appendRights returns -1 and writes nothing", () => {
    const need = cmsgSpace(abi, 4);
    for (let size = 0; size < need; size++) {
      const bytes = new Uint8Array(size).fill(DIRTY);
      expect(appendRights(abi, bytes, viewOf(bytes), 0, [5])).toBe(-1);
      expect(bytes.every((b) => b === DIRTY)).toBe(true);
    }
    // a message ending exactly at the buffer end fits (tail padding included)
    const exact = new Uint8Array(need);
    expect(appendRights(abi, exact, viewOf(exact), 0, [5])).toBe(need);
  });

  test("SocketAncillary refuses a too-small buffer with ERR_UA_BUFFER and leaves it untouched (5.5.7)", () => {
    const one = new Uint8Array(1).fill(DIRTY);
    const a1 = new SocketAncillary(one);
    const e = expectUa(() => a1.addFds([0]), "ERR_UA_BUFFER");
    expect(e.message).toBe(MESSAGES.ancillaryBuffer);
    expect(one[0]).toBe(DIRTY);
    expect(a1.length).toBe(0);

    // room for one message but not a second: the second add changes nothing
    const bytes = new Uint8Array(cmsgSpace(abi, 4) + cmsgSpace(abi, 4) - 1).fill(DIRTY);
    const a = new SocketAncillary(bytes);
    a.addFds([3]);
    const len = a.length;
    const snapshot = Array.from(bytes);
    expectUa(() => a.addFds([4]), "ERR_UA_BUFFER");
    expect(a.length).toBe(len);
    expect(Array.from(bytes)).toEqual(snapshot);
    expect(bytes[bytes.length - 1]).toBe(DIRTY);
    // addCredentials likewise
    if (abi.os === "linux") {
      expectUa(() => a.addCredentials(new ScmCredentials(1, 2, 3)), "ERR_UA_BUFFER");
      expect(Array.from(bytes)).toEqual(snapshot);
      expect(a.length).toBe(len);
    }
  });

  test("addFds([]) writes a header-only rights message", () => {
    const bytes = new Uint8Array(64).fill(DIRTY);
    const a = new SocketAncillary(bytes);
    a.addFds([]);
    expect(a.length).toBe(cmsgSpace(abi, 0));
    expect(a.length).toBe(H);
    const dv = viewOf(bytes);
    expect(dv.getUint32(C.len.offset, true)).toBe(H);
    if (C.len.size === 8) expect(dv.getUint32(C.len.offset + 4, true)).toBe(0);
    expect(dv.getInt32(C.level.offset, true)).toBe(K.SOL_SOCKET);
    expect(dv.getInt32(C.type.offset, true)).toBe(K.SCM_RIGHTS);
    expect(bytes[H]).toBe(DIRTY); // nothing written past the header
    expect(parseControlMessages(abi, bytes, a.length)).toEqual([{ type: "rights", fds: [] }]);
  });

  test("multiple messages concatenate at CMSG_SPACE boundaries relative to the slice start", () => {
    for (let off = 0; off <= 8; off++) {
      const backing = new Uint8Array(off + 128).fill(DIRTY);
      const bytes = backing.subarray(off);
      const a = new SocketAncillary(bytes);
      a.addFds([11]);
      const second = a.length;
      expect(second).toBe(cmsgSpace(abi, 4));
      a.addFds([12, 13, 14]);
      const third = a.length;
      expect(third).toBe(second + cmsgSpace(abi, 12));
      a.addFds([]);
      expect(a.length).toBe(third + cmsgSpace(abi, 0));
      const dv = viewOf(bytes);
      expect(dv.getUint32(second + C.len.offset, true)).toBe(H + 12);
      expect(dv.getInt32(second + H, true)).toBe(12);
      expect(dv.getInt32(second + H + 8, true)).toBe(14);
      // padding between messages is zero even though the buffer was dirty
      for (let i = H + 4; i < second; i++) expect(bytes[i]).toBe(0);
      expect(parseControlMessages(abi, bytes, a.length)).toEqual([
        { type: "rights", fds: [11] },
        { type: "rights", fds: [12, 13, 14] },
        { type: "rights", fds: [] },
      ]);
      for (let i = 0; i < off; i++) expect(backing[i]).toBe(DIRTY);
    }
  });

  test("appendCredentials writes {pid i32, uid u32, gid u32} (Linux)", () => {
    if (abi.os !== "linux") return;
    const bytes = new Uint8Array(40).fill(DIRTY);
    const end = appendCredentials(abi, bytes, viewOf(bytes), 0, -5, 0xfffffffe, 4000000000);
    expect(end).toBe(32);
    const dv = viewOf(bytes);
    expect(dv.getUint32(0, true)).toBe(28);
    expect(dv.getInt32(8, true)).toBe(1);
    expect(dv.getInt32(12, true)).toBe(2);
    expect(dv.getInt32(16, true)).toBe(-5);
    expect(dv.getUint32(20, true)).toBe(0xfffffffe);
    expect(dv.getUint32(24, true)).toBe(4000000000);
    for (let i = 28; i < 32; i++) expect(bytes[i]).toBe(0);
    expect(bytes[32]).toBe(DIRTY);
    expect(parseControlMessages(abi, bytes, end)).toEqual([{ type: "credentials", pid: -5, uid: 0xfffffffe, gid: 4000000000 }]);
  });
});

describe("parser rules (docs/design.md, Wire format)", () => {
  test("terminates on every small/huge cmsg_len at offsets 0..8 (child process, 20 s limit)", () => {
    checkTerminationInChild(7, 2000);
  });

  test("rule 1: stops when fewer than sizeof(cmsghdr) bytes remain", () => {
    requireTermination();
    for (let n = 0; n < C.headerSize; n++) {
      const bytes = build([{ payload: [] }]).subarray(0, n);
      expect(parseControlMessages(abi, bytes)).toEqual([]);
    }
    // a valid message followed by headerSize-1 bytes of a would-be header: only the first is yielded
    const full = build([{ payload: fdBytes(3) }, { payload: fdBytes(4) }]);
    const cut = full.subarray(0, cmsgSpace(abi, 4) + C.headerSize - 1);
    expect(parseControlMessages(abi, cut)).toEqual([{ type: "rights", fds: [3] }]);
    // and the length argument bounds the walk, not the buffer size
    expect(parseControlMessages(abi, full, cmsgSpace(abi, 4))).toEqual([{ type: "rights", fds: [3] }]);
    expect(parseControlMessages(abi, full, 0)).toEqual([]);
  });

  test("rule 3a: cmsg_len < header_len stops the walk (nothing after it is yielded)", () => {
    requireTermination();
    for (const len of [0, 1, H - 1]) {
      const bytes = build([{ len, payload: fdBytes(3) }, { payload: fdBytes(4) }]);
      expect(parseControlMessages(abi, bytes)).toEqual([]);
      const bytes2 = build([{ payload: fdBytes(3) }, { len, payload: fdBytes(4) }, { payload: fdBytes(5) }]);
      expect(parseControlMessages(abi, bytes2)).toEqual([{ type: "rights", fds: [3] }]);
    }
  });

  test("rule 3b: cmsg_len > remaining stops the walk (no giant slice, no wraparound)", () => {
    requireTermination();
    const ok = build([{ payload: fdBytes(3) }]);
    const lens = [ok.length + 1, 0xffffffff];
    if (C.len.size === 8) lens.push(2 ** 32 + H + 4, 2 ** 53 - 1); // high half non-zero on glibc
    for (const len of lens) {
      const bytes = build([{ len, payload: fdBytes(3) }]);
      expect(parseControlMessages(abi, bytes)).toEqual([]);
      const two = build([{ payload: fdBytes(1) }, { len, payload: fdBytes(2) }]);
      expect(parseControlMessages(abi, two)).toEqual([{ type: "rights", fds: [1] }]);
    }
    // cmsg_len == remaining exactly is fine
    const exact = build([{ payload: fdBytes(9) }]);
    viewOf(exact).setUint32(C.len.offset, exact.length, true); // len 24 = header + 8 bytes: fd 9 and a zero fd
    expect(parseControlMessages(abi, exact)).toEqual([{ type: "rights", fds: [9, 0] }]);
  });

  test("rule 5: a last message without trailing padding is still yielded; the walk then ends", () => {
    requireTermination();
    const bytes = build([{ payload: fdBytes(3) }, { payload: fdBytes(4), pad: false }]);
    expect(bytes.length).toBe(cmsgSpace(abi, 4) + H + 4);
    if (abi.os === "linux") expect(bytes.length % 8).not.toBe(0);
    expect(parseControlMessages(abi, bytes)).toEqual([
      { type: "rights", fds: [3] },
      { type: "rights", fds: [4] },
    ]);
    // a single unpadded message
    expect(parseControlMessages(abi, build([{ payload: fdBytes(7), pad: false }]))).toEqual([{ type: "rights", fds: [7] }]);
  });

  test("interpretation: trailing partial fd bytes are ignored", () => {
    requireTermination();
    for (const extra of [1, 2, 3]) {
      const payload = new Uint8Array(4 + extra);
      payload.set(fdBytes(6));
      payload.fill(0x7f, 4);
      expect(parseControlMessages(abi, build([{ payload }]))).toEqual([{ type: "rights", fds: [6] }]);
    }
    expect(parseControlMessages(abi, build([{ payload: [1, 2, 3] }]))).toEqual([{ type: "rights", fds: [] }]);
  });

  test("interpretation: negative fd integers are skipped, order preserved", () => {
    requireTermination();
    const bytes = build([{ payload: fdBytes(-1, 5, -2147483648, 7, -42, 0, 2147483647) }]);
    expect(parseControlMessages(abi, bytes)).toEqual([{ type: "rights", fds: [5, 7, 0, 2147483647] }]);
  });

  test("interpretation: unknown kinds are skipped (not rights, not credentials), walking continues", () => {
    requireTermination();
    const bytes = build([
      { level: K.SOL_SOCKET, type: 99, payload: fdBytes(3) },
      { level: 0 /* IPPROTO_IP */, type: K.SCM_RIGHTS, payload: fdBytes(4) },
      { level: 41, type: K.SCM_CREDENTIALS >= 0 ? K.SCM_CREDENTIALS : 2, payload: new Uint8Array(12) },
      { payload: fdBytes(5) },
    ]);
    const parsed = parseControlMessages(abi, bytes);
    expect(parsed.length).toBe(4);
    expect(parsed.map((m) => m.type)).toEqual(["other", "other", "other", "rights"]);
    expect(parsed[3]).toEqual({ type: "rights", fds: [5] });
    const cur = new CmsgCursor(abi).reset(viewOf(bytes), 0, bytes.length);
    const kinds: string[] = [];
    while (cur.next()) kinds.push(cur.isRights() ? "r" : cur.isCredentials() ? "c" : "o");
    expect(kinds).toEqual(["o", "o", "o", "r"]);
  });

  test("interpretation: credentials only with a payload of at least 12 bytes (Linux)", () => {
    requireTermination();
    if (abi.os !== "linux") return;
    const creds = (n: number) => {
      const p = new Uint8Array(n);
      const dv = viewOf(p);
      if (n >= 4) dv.setInt32(0, 1234, true);
      if (n >= 8) dv.setUint32(4, 1000, true);
      if (n >= 12) dv.setUint32(8, 100, true);
      return build([{ type: K.SCM_CREDENTIALS, payload: p }]);
    };
    for (let n = 0; n < 12; n++) {
      const parsed = parseControlMessages(abi, creds(n));
      expect(parsed.length).toBe(1);
      expect(parsed[0]!.type).toBe("other");
    }
    expect(parseControlMessages(abi, creds(12))).toEqual([{ type: "credentials", pid: 1234, uid: 1000, gid: 100 }]);
    expect(parseControlMessages(abi, creds(16))).toEqual([{ type: "credentials", pid: 1234, uid: 1000, gid: 100 }]);
  });

  test("zero-fd rights message yields an empty rights entry", () => {
    requireTermination();
    expect(parseControlMessages(abi, build([{ payload: [] }, { payload: [] }]))).toEqual([
      { type: "rights", fds: [] },
      { type: "rights", fds: [] },
    ]);
  });

  test("unaligned reads: the same bytes parse identically at every slice offset 0..8", () => {
    requireTermination();
    const src = build([{ payload: fdBytes(3, 4) }, { type: 77, payload: [1, 2, 3] }, { payload: fdBytes(5), pad: false }]);
    const want = parseControlMessages(abi, src);
    expect(want.length).toBe(3);
    for (let off = 0; off <= 8; off++) {
      const backing = new Uint8Array(off + src.length + 5).fill(DIRTY);
      backing.set(src, off);
      const slice = backing.subarray(off, off + src.length);
      const got = parseControlMessages(abi, slice);
      expect(got).toEqual(want.map((m) => (m.type === "other" ? { ...m } : m)));
    }
  });

  test("CmsgCursor clamps a reported length larger than its view", () => {
    requireTermination();
    const bytes = build([{ payload: fdBytes(3) }]);
    const cur = new CmsgCursor(abi).reset(viewOf(bytes), 0, 1 << 30);
    expect(cur.next()).toBe(true);
    expect(cur.fdSlots).toBe(1);
    expect(cur.fdAt(0)).toBe(3);
    expect(cur.next()).toBe(false);
    expect(cur.next()).toBe(false); // stays terminated
    const neg = new CmsgCursor(abi).reset(viewOf(bytes), 0, -5);
    expect(neg.next()).toBe(false);
    expect(new CmsgCursor(abi).next()).toBe(false); // never reset
  });
});

describe("platform unit tests (crate 5.1)", () => {
  test("clamp_nofile maps special and out-of-range values", () => {
    expect(clampNofile(0)).toBe(253);
    expect(clampNofile(10)).toBe(253);
    expect(clampNofile(253)).toBe(253);
    expect(clampNofile(254)).toBe(254);
    expect(clampNofile(1024)).toBe(1024);
    expect(clampNofile(1 << 20)).toBe(1 << 20);
    expect(clampNofile((1 << 20) + 1)).toBe(1 << 20);
    // RLIM_INFINITY / u64::MAX arrive as null (unrepresentable) or as an unsafe number
    expect(clampNofile(null)).toBe(1 << 20);
    expect(clampNofile(2 ** 64 - 1)).toBe(1 << 20);
    expect(clampNofile(2 ** 63 - 1)).toBe(1 << 20);
    expect(clampNofile(Number.MAX_SAFE_INTEGER)).toBe(1 << 20);
  });
});
