/**
 * Linux aarch64, glibc. Same msghdr/cmsghdr as x86_64 (LP64); epoll_event is NOT packed on aarch64:
 * 16 bytes with data @8 (docs/design.md, "Per-ABI facts": measured under qemu-aarch64; the 12-byte layout fails 101/101 tests).
 */
import type { Abi } from "./abi.ts";
import { epollArm64, gnuLayout, linuxShared } from "./linux-common.ts";

export const abi: Abi = {
  ...linuxShared,
  ...gnuLayout,
  name: "linux-arm64-gnu",
  arch: "arm64",
  libc: "glibc",
  libName: "libc.so.6",
  epollEvent: epollArm64,
};
