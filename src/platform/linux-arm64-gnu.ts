/**
 * Linux aarch64, glibc. Same msghdr/cmsghdr as x86_64 (LP64); epoll_event is NOT packed on aarch64:
 * 16 bytes with data @8 (abi.md: measured under qemu-aarch64; the 12-byte layout fails 101/101 tests).
 */
import type { Abi } from "./abi.ts";
import { linuxShared } from "./linux-common.ts";

export const abi: Abi = {
  ...linuxShared,
  name: "linux-arm64-gnu",
  arch: "arm64",
  libc: "glibc",
  libName: "libc.so.6",
  msghdr: {
    size: 56,
    name: { offset: 0, size: 8 }, namelen: { offset: 8, size: 4 },
    iov: { offset: 16, size: 8 }, iovlen: { offset: 24, size: 8 },
    control: { offset: 32, size: 8 }, controllen: { offset: 40, size: 8 },
    flags: { offset: 48, size: 4 },
  },
  cmsg: { headerSize: 16, headerLen: 16, align: 8, len: { offset: 0, size: 8 }, level: { offset: 8, size: 4 }, type: { offset: 12, size: 4 } },
  epollEvent: { size: 16, events: { offset: 0, size: 4 }, data: { offset: 8, size: 8 } },
  maxSendControlBytes: null,
};
