/**
 * LOCAL_PEERCRED decoding (darwin, FreeBSD): the struct xucred the kernel fills, decoded with each
 * table. FreeBSD carries the peer's pid in cr_pid (offset 80); darwin has no such field and asks
 * LOCAL_PEERPID separately (end to end in test/fake-libc.test.ts).
 */
import { expect, test } from "bun:test";
import { parseXucred } from "../src/credentials.ts";
import { abi as darwinX64 } from "../src/platform/darwin-x64.ts";
import { abi as darwinArm64 } from "../src/platform/darwin-arm64.ts";
import { abi as freebsdX64 } from "../src/platform/freebsd-x64.ts";

/** A struct xucred as the kernel writes it: version 0, uid, ngroups, groups[], then (FreeBSD) cr_pid. */
function xucred(size: number, uid: number, groups: number[], pidAt80?: number): DataView {
  const v = new DataView(new ArrayBuffer(size));
  v.setUint32(0, 0, true); // XUCRED_VERSION
  v.setUint32(4, uid, true);
  v.setInt16(8, groups.length, true);
  groups.forEach((g, i) => v.setUint32(12 + 4 * i, g, true));
  if (pidAt80 !== undefined) v.setInt32(80, pidAt80, true);
  return v;
}

test("FreeBSD: cr_pid at offset 80 is the peer's pid", () => {
  const x = freebsdX64.xucred!;
  expect(x.size).toBe(88);
  expect(x.pid).toEqual({ offset: 80, size: 4 });
  expect(parseXucred(x, xucred(88, 1001, [20, 0, 5], 4242))).toEqual({ pid: 4242, uid: 1001, gid: 20 });
});

test("FreeBSD: a kernel older than 13 leaves the union 0: pid is null, not 0", () => {
  expect(parseXucred(freebsdX64.xucred!, xucred(88, 0, [0], 0))).toEqual({ pid: null, uid: 0, gid: 0 });
});

test("FreeBSD: only the low 4 bytes of the pointer-sized union are the pid", () => {
  const v = xucred(88, 7, [7], 99);
  v.setUint32(84, 0xdeadbeef, true); // upper half of the union: not part of pid_t
  expect(parseXucred(freebsdX64.xucred!, v).pid).toBe(99);
});

test("darwin: the 76-byte xucred has no pid field (LOCAL_PEERPID supplies it)", () => {
  for (const a of [darwinX64, darwinArm64]) {
    expect(a.xucred!.size).toBe(76);
    expect(a.xucred!.pid).toBeNull();
    expect(a.constants.LOCAL_PEERPID).toBe(2);
    expect(parseXucred(a.xucred!, xucred(76, 501, [20, 12]))).toEqual({ pid: null, uid: 501, gid: 20 });
  }
});

test("no groups listed: gid is 0xffffffff (unknown), never a stale byte", () => {
  expect(parseXucred(freebsdX64.xucred!, xucred(88, 5, [], 10)).gid).toBe(0xffff_ffff);
});
