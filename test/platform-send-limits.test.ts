/**
 * Per-send fd limits of the tables that cannot run here, checked against the kernel rule each one
 * rests on.
 */
import { expect, test } from "bun:test";
import { abi as darwinX64 } from "../src/platform/darwin-x64.ts";
import { abi as darwinArm64 } from "../src/platform/darwin-arm64.ts";
import { abi as freebsdX64 } from "../src/platform/freebsd-x64.ts";

// xnu: control data is copied into one MCLBYTES (2048-byte) mbuf cluster, and on 64-bit kernels
// unp_internalize rewrites each 4-byte fd in place as an 8-byte fileglob pointer after the 12-byte
// cmsghdr. So n fds need 12 + 8n bytes of the cluster.
const MCLBYTES = 2048;
const xnuInternalBytes = (n: number, header: number) => header + 8 * n;

test("darwin: 253 fds need 2036 of the 2048-byte cluster once internalized; 255 would not fit", () => {
  for (const a of [darwinX64, darwinArm64]) {
    expect(a.maxFdsPerSend).toBe(253);
    expect(xnuInternalBytes(a.maxFdsPerSend, a.cmsg.headerSize)).toBe(2036);
    expect(xnuInternalBytes(a.maxFdsPerSend, a.cmsg.headerSize)).toBeLessThanOrEqual(MCLBYTES);
    // the largest count that fits is 254: the table stays one under it
    expect(Math.floor((MCLBYTES - a.cmsg.headerSize) / 8)).toBe(254);
    expect(xnuInternalBytes(255, a.cmsg.headerSize)).toBeGreaterThan(MCLBYTES);
    // what the caller writes is half that: CMSG_SPACE(253 * 4) = 1024
    expect(a.cmsg.headerLen + Math.ceil((a.maxFdsPerSend * 4) / a.cmsg.align) * a.cmsg.align).toBe(1024);
  }
});

test("FreeBSD: 253 fds are CMSG_SPACE(1012) = 1032 bytes of control data (the crate's fixed budget)", () => {
  const a = freebsdX64;
  expect(a.maxFdsPerSend).toBe(253);
  expect(a.cmsg.headerLen + Math.ceil((a.maxFdsPerSend * 4) / a.cmsg.align) * a.cmsg.align).toBe(1032);
});
