/**
 * Linux aarch64, musl: musl's 4-byte length fields (see linux-x64-musl.ts) with aarch64's 16-byte
 * epoll_event. Measured under qemu-aarch64 with musl 1.2.3 (abi.md), including the ENOMEM above
 * 1024 bytes of control data in sendmsg.
 */
import type { Abi } from "./abi.ts";
import { linuxShared } from "./linux-common.ts";

export const abi: Abi = {
  ...linuxShared,
  name: "linux-arm64-musl",
  arch: "arm64",
  libc: "musl",
  libName: "libc.musl-aarch64.so.1",
  msghdr: {
    size: 56,
    name: { offset: 0, size: 8 }, namelen: { offset: 8, size: 4 },
    iov: { offset: 16, size: 8 }, iovlen: { offset: 24, size: 4 },
    control: { offset: 32, size: 8 }, controllen: { offset: 40, size: 4 },
    flags: { offset: 48, size: 4 },
  },
  cmsg: { headerSize: 16, headerLen: 16, align: 8, len: { offset: 0, size: 4 }, level: { offset: 8, size: 4 }, type: { offset: 12, size: 4 } },
  epollEvent: { size: 16, events: { offset: 0, size: 4 }, data: { offset: 8, size: 8 } },
  maxSendControlBytes: 1024,
  maxFdsPerSend: 252,
};
