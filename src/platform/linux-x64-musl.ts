/**
 * Linux x86_64, musl. Same offsets as glibc, but msg_iovlen is an int, msg_controllen a socklen_t and
 * cmsg_len a socklen_t, each followed by 4 bytes of padding (musl include/sys/socket.h; abi.md measured
 * on musl 1.2.3). We write/read 4 bytes and keep the pads zero. musl's 64-bit sendmsg copies control
 * data into a fixed stack array and fails with ENOMEM above 1024 bytes (musl 1.2.3, abi.md), so one
 * message carries at most 252 fds.
 */
import type { Abi } from "./abi.ts";
import { linuxShared } from "./linux-common.ts";

export const abi: Abi = {
  ...linuxShared,
  name: "linux-x64-musl",
  arch: "x64",
  libc: "musl",
  // musl maps any libc.* soname to itself; this is the canonical one (abi.md "dlopen names")
  libName: "libc.musl-x86_64.so.1",
  msghdr: {
    size: 56,
    name: { offset: 0, size: 8 }, namelen: { offset: 8, size: 4 },
    iov: { offset: 16, size: 8 }, iovlen: { offset: 24, size: 4 },
    control: { offset: 32, size: 8 }, controllen: { offset: 40, size: 4 },
    flags: { offset: 48, size: 4 },
  },
  cmsg: { headerSize: 16, headerLen: 16, align: 8, len: { offset: 0, size: 4 }, level: { offset: 8, size: 4 }, type: { offset: 12, size: 4 } },
  // musl packs epoll_event on x86_64 too (abi.md)
  epollEvent: { size: 12, events: { offset: 0, size: 4 }, data: { offset: 4, size: 8 } },
  maxSendControlBytes: 1024,
  maxFdsPerSend: 252,
};
