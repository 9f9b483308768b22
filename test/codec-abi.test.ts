/**
 * The pure cmsg codec against every ABI table: round-trips at every byte alignment, hand-written
 * expected bytes per OS layout, CMSG_SPACE placement of consecutive messages, zeroed padding over a
 * dirty buffer, and "does not fit" leaving the buffer untouched.
 */
import { describe, expect, test } from "bun:test";
import type { Abi, Field } from "../src/platform/abi.ts";
import { ABIS } from "../src/platform/index.ts";
import { appendCredentials, appendRights, bufferSizeForRights, CmsgCursor, cmsgSpace, parseControlMessages, viewOf } from "../src/cmsg/index.ts";

// Every table the library ships (ABIS is the one list; a new ABI is covered here without editing this file).
const TABLES: readonly Abi[] = Object.values(ABIS);
const DIRTY = 0xaa;
const OFFSETS = [0, 1, 2, 3, 4, 5, 6, 7, 8];

/** fd 0x01020304 in native (little-endian) order. */
const FD = 0x01020304;
const FD_BYTES = [0x04, 0x03, 0x02, 0x01];

/**
 * One SCM_RIGHTS message carrying FD, written out by hand from each OS's headers (not from the table):
 * - Linux (glibc size_t / musl socklen_t + zero pad, byte-identical): len 20 in 8 bytes @0, SOL_SOCKET 1 @8,
 *   SCM_RIGHTS 1 @12, fd @16, 4 bytes tail pad; CMSG_SPACE(4) = 24.
 * - darwin: len 16 @0, SOL_SOCKET 0xffff @4, SCM_RIGHTS 1 @8, fd @12, no pad; CMSG_SPACE(4) = 16.
 * - FreeBSD: len 20 @0, 0xffff @4, 1 @8, 4 bytes header pad, fd @16, 4 bytes tail pad; CMSG_SPACE(4) = 24.
 */
const ONE_FD_BYTES: Record<Abi["os"], number[]> = {
  linux: [20, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, ...FD_BYTES, 0, 0, 0, 0],
  darwin: [16, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0, ...FD_BYTES],
  freebsd: [20, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, ...FD_BYTES, 0, 0, 0, 0],
};

/** Where the second message starts after a 1-fd message, and where it ends after 3 more fds. */
const TWO_MESSAGES: Record<Abi["os"], { second: number; end: number }> = {
  linux: { second: 24, end: 24 + 16 + 16 },
  darwin: { second: 16, end: 16 + 12 + 12 },
  freebsd: { second: 24, end: 24 + 16 + 16 },
};

function dirty(n: number): Uint8Array {
  return new Uint8Array(n).fill(DIRTY);
}

/** Byte indexes (relative to the message start) that carry header fields or payload data. */
function fieldBytes(abi: Abi, payloadSpans: Array<[number, number]>): Set<number> {
  const set = new Set<number>();
  const add = (f: Field | { offset: number; size: number }) => {
    for (let i = 0; i < f.size; i++) set.add(f.offset + i);
  };
  add(abi.cmsg.len);
  add(abi.cmsg.level);
  add(abi.cmsg.type);
  for (const [off, size] of payloadSpans) add({ offset: abi.cmsg.headerLen + off, size });
  return set;
}

function readLen(abi: Abi, dv: DataView, at: number): number {
  const f = abi.cmsg.len;
  return f.size === 8 ? Number(dv.getBigUint64(at + f.offset, true)) : dv.getUint32(at + f.offset, true);
}

describe.each(TABLES.map((a) => [a.name, a] as const))("%s", (_name, abi) => {
  const k = abi.constants;

  test("one fd: exact bytes by hand, at every offset 0..8 of a larger buffer", () => {
    const expected = ONE_FD_BYTES[abi.os];
    expect(expected.length).toBe(bufferSizeForRights(abi, 1));
    for (const off of OFFSETS) {
      // (a) a Uint8Array that itself starts at an odd byteOffset of its ArrayBuffer
      const big = dirty(off + expected.length + 16);
      const sub = big.subarray(off);
      const end = appendRights(abi, sub, viewOf(sub), 0, [FD]);
      expect(end).toBe(expected.length);
      expect([...sub.subarray(0, end)]).toEqual(expected);
      expect([...big.subarray(0, off)].every((b) => b === DIRTY)).toBe(true);
      expect([...sub.subarray(end)].every((b) => b === DIRTY)).toBe(true);
      expect(parseControlMessages(abi, sub, end)).toEqual([{ type: "rights", fds: [FD] }]);

      // (b) an offset argument into a buffer starting at byteOffset 0
      const buf = dirty(off + expected.length + 16);
      const end2 = appendRights(abi, buf, viewOf(buf), off, [FD]);
      expect(end2).toBe(off + expected.length);
      expect([...buf.subarray(off, end2)]).toEqual(expected);
      const cursor = new CmsgCursor(abi).reset(viewOf(buf), off, end2 - off);
      expect(cursor.next()).toBe(true);
      expect(cursor.isRights()).toBe(true);
      expect([cursor.level, cursor.type]).toEqual([k.SOL_SOCKET, k.SCM_RIGHTS]);
      expect(cursor.dataOffset).toBe(off + abi.cmsg.headerLen);
      expect(cursor.dataLength).toBe(4);
      expect(cursor.fdSlots).toBe(1);
      expect(cursor.fdAt(0)).toBe(FD);
      expect(cursor.next()).toBe(false);
    }
  });

  test("header fields sit where the table says (len, level, type, payload)", () => {
    const buf = dirty(64);
    const dv = viewOf(buf);
    const end = appendRights(abi, buf, dv, 0, [5, 6]);
    expect(end).toBe(cmsgSpace(abi, 8));
    expect(readLen(abi, dv, 0)).toBe(abi.cmsg.headerLen + 8);
    expect(dv.getInt32(abi.cmsg.level.offset, true)).toBe(k.SOL_SOCKET);
    expect(dv.getInt32(abi.cmsg.type.offset, true)).toBe(k.SCM_RIGHTS);
    expect(dv.getInt32(abi.cmsg.headerLen, true)).toBe(5);
    expect(dv.getInt32(abi.cmsg.headerLen + 4, true)).toBe(6);
  });

  test("round trip of several fd counts at every offset 0..8", () => {
    const counts = [0, 1, 2, 3, 7, 64, abi.maxFdsPerSend];
    for (const n of counts) {
      const fds = Array.from({ length: n }, (_, i) => (i * 2654435761) % 0x7fffffff);
      for (const off of OFFSETS) {
        const size = bufferSizeForRights(abi, n);
        const big = dirty(off + size + 8);
        const sub = big.subarray(off);
        const end = appendRights(abi, sub, viewOf(sub), 0, fds);
        expect(end).toBe(size);
        expect(readLen(abi, viewOf(sub), 0)).toBe(abi.cmsg.headerLen + 4 * n);
        expect(parseControlMessages(abi, sub, end)).toEqual([{ type: "rights", fds }]);
        expect(sub[end]).toBe(DIRTY);
      }
    }
  });

  test("two consecutive messages land at CMSG_SPACE boundaries", () => {
    const { second, end } = TWO_MESSAGES[abi.os];
    expect(second).toBe(cmsgSpace(abi, 4));
    expect(end - second).toBe(cmsgSpace(abi, 12));
    for (const off of OFFSETS) {
      const buf = dirty(off + end + 16);
      const dv = viewOf(buf);
      const mid = appendRights(abi, buf, dv, off, [FD]);
      expect(mid).toBe(off + second);
      const fin = appendRights(abi, buf, dv, mid, [10, 11, 12]);
      expect(fin).toBe(off + end);
      // the second header starts exactly at CMSG_SPACE(4) after the first
      expect(readLen(abi, dv, off + second)).toBe(abi.cmsg.headerLen + 12);
      expect(dv.getInt32(off + second + abi.cmsg.level.offset, true)).toBe(k.SOL_SOCKET);
      expect(dv.getInt32(off + second + abi.cmsg.headerLen + 8, true)).toBe(12);

      const cursor = new CmsgCursor(abi).reset(dv, off, fin - off);
      expect(cursor.next()).toBe(true);
      expect(cursor.dataOffset).toBe(off + abi.cmsg.headerLen);
      expect(cursor.next()).toBe(true);
      expect(cursor.dataOffset).toBe(off + second + abi.cmsg.headerLen);
      expect([0, 1, 2].map((i) => cursor.fdAt(i))).toEqual([10, 11, 12]);
      expect(cursor.next()).toBe(false);

      const sub = buf.subarray(off, fin);
      expect(parseControlMessages(abi, sub)).toEqual([
        { type: "rights", fds: [FD] },
        { type: "rights", fds: [10, 11, 12] },
      ]);
    }
  });

  test("padding bytes are zero even over a 0xAA-filled buffer", () => {
    for (const n of [1, 2, 3, 5]) {
      for (const off of OFFSETS) {
        const buf = dirty(off + 128);
        const end = appendRights(abi, buf, viewOf(buf), off, Array.from({ length: n }, () => 0x7f7f7f7f));
        const fields = fieldBytes(abi, [[0, 4 * n]]);
        for (let i = 0; i < end - off; i++) {
          if (!fields.has(i)) expect({ n, off, i, byte: buf[off + i] }).toEqual({ n, off, i, byte: 0 });
        }
        expect(buf[end]).toBe(DIRTY);
        expect(buf[off - 1] ?? DIRTY).toBe(DIRTY);
      }
    }
  });

  test("an encode that does not fit returns -1 and leaves the buffer untouched", () => {
    for (const n of [0, 1, 3, 253]) {
      const size = bufferSizeForRights(abi, n);
      for (const off of OFFSETS) {
        // one byte short, whether the shortfall comes from the length or from the offset
        const buf = dirty(off + size - 1);
        expect(appendRights(abi, buf, viewOf(buf), off, new Array(n).fill(3))).toBe(-1);
        expect(buf.every((b) => b === DIRTY)).toBe(true);
      }
      const exact = dirty(size);
      expect(appendRights(abi, exact, viewOf(exact), 0, new Array(n).fill(3))).toBe(size);
    }
    // second message that does not fit leaves the first one intact and the rest dirty
    const buf = dirty(cmsgSpace(abi, 4) + cmsgSpace(abi, 8) - 1);
    const dv = viewOf(buf);
    const mid = appendRights(abi, buf, dv, 0, [FD]);
    const snapshot = [...buf];
    expect(appendRights(abi, buf, dv, mid, [1, 2])).toBe(-1);
    expect([...buf]).toEqual(snapshot);
    expect(buf.subarray(mid).every((b) => b === DIRTY)).toBe(true);
  });

  if (abi.passCredentials) {
    test("credentials: exact bytes and round trip at every offset 0..8", () => {
      const u = abi.ucred!;
      // Linux: struct ucred {pid i32, uid u32, gid u32} = 12 bytes; CMSG_LEN(12) = 28, CMSG_SPACE(12) = 32
      expect(cmsgSpace(abi, u.size)).toBe(32);
      const expected = [
        28, 0, 0, 0, 0, 0, 0, 0, // cmsg_len (8 bytes glibc; 4 + zero pad musl)
        1, 0, 0, 0, // SOL_SOCKET
        2, 0, 0, 0, // SCM_CREDENTIALS
        0x39, 0x30, 0, 0, // pid 12345
        0xfe, 0xff, 0xff, 0xff, // uid 0xfffffffe (unsigned)
        0xe8, 0x03, 0, 0, // gid 1000
        0, 0, 0, 0, // tail pad
      ];
      for (const off of OFFSETS) {
        const big = dirty(off + 48);
        const sub = big.subarray(off);
        const end = appendCredentials(abi, sub, viewOf(sub), 0, 12345, 0xfffffffe, 1000);
        expect(end).toBe(32);
        expect([...sub.subarray(0, end)]).toEqual(expected);
        expect(sub[end]).toBe(DIRTY);
        expect(parseControlMessages(abi, sub, end)).toEqual([{ type: "credentials", pid: 12345, uid: 0xfffffffe, gid: 1000 }]);

        // rights followed by credentials, via the offset argument
        const buf = dirty(off + 24 + 32 + 8);
        const dv = viewOf(buf);
        const mid = appendRights(abi, buf, dv, off, [9]);
        const fin = appendCredentials(abi, buf, dv, mid, -1, 0, 0);
        expect([mid, fin]).toEqual([off + 24, off + 56]);
        expect(parseControlMessages(abi, buf.subarray(off, fin))).toEqual([
          { type: "rights", fds: [9] },
          { type: "credentials", pid: -1, uid: 0, gid: 0 },
        ]);
      }
      // does not fit: -1, untouched
      const small = dirty(31);
      expect(appendCredentials(abi, small, viewOf(small), 0, 1, 2, 3)).toBe(-1);
      expect(small.every((b) => b === DIRTY)).toBe(true);
    });
  } else {
    test("credentials are refused (no SCM_CREDENTIALS on this OS) and nothing is written", () => {
      const buf = dirty(64);
      expect(appendCredentials(abi, buf, viewOf(buf), 0, 1, 2, 3)).toBe(-1);
      expect(buf.every((b) => b === DIRTY)).toBe(true);
      // a Linux-shaped SCM_CREDENTIALS (type 2) is just "other" here: type 2 is SCM_TIMESTAMP on the BSDs
      const end = appendRights(abi, buf, viewOf(buf), 0, [1]);
      viewOf(buf).setInt32(abi.cmsg.type.offset, 2, true);
      expect(parseControlMessages(abi, buf, end)).toEqual([
        { type: "other", level: k.SOL_SOCKET, cmsgType: 2, dataOffset: abi.cmsg.headerLen, dataLength: 4 },
      ]);
    });
  }

  test("the parser stops at a header whose cmsg_len is below CMSG_LEN(0) or past the end", () => {
    const buf = dirty(64);
    const dv = viewOf(buf);
    const end = appendRights(abi, buf, dv, 0, [4]);
    const len = abi.cmsg.headerLen + 4; // CMSG_LEN(4)
    // a last message without its trailing padding is still yielded (kernels may omit it)
    expect(parseControlMessages(abi, buf, len)).toEqual([{ type: "rights", fds: [4] }]);
    expect(end - len).toBe(abi.os === "darwin" ? 0 : 4);
    // cmsg_len past the end of the data: the message is incomplete -> nothing
    expect(parseControlMessages(abi, buf, len - 1)).toEqual([]);
    // fewer bytes than sizeof(struct cmsghdr): nothing
    expect(parseControlMessages(abi, buf, abi.cmsg.headerSize - 1)).toEqual([]);
    // a cmsg_len smaller than the header length is malformed
    const bad = dirty(64);
    appendRights(abi, bad, viewOf(bad), 0, [4]);
    viewOf(bad).setUint32(abi.cmsg.len.offset, abi.cmsg.headerLen - 1, true);
    expect(parseControlMessages(abi, bad, end)).toEqual([]);
  });
});
