/**
 * Linux x86_64, glibc. Verified by a C program on glibc 2.36 (bun-facts.md Q8) and by running the test
 * suite natively here.
 */
import type { Abi } from "./abi.ts";
import { linuxShared } from "./linux-common.ts";

export const abi: Abi = {
  ...linuxShared,
  name: "linux-x64-gnu",
  arch: "x64",
  libc: "glibc",
  libName: "libc.so.6",
  // sizeof(struct msghdr)=56: msg_iovlen and msg_controllen are size_t (8 bytes)
  msghdr: {
    size: 56,
    name: { offset: 0, size: 8 }, namelen: { offset: 8, size: 4 },
    iov: { offset: 16, size: 8 }, iovlen: { offset: 24, size: 8 },
    control: { offset: 32, size: 8 }, controllen: { offset: 40, size: 8 },
    flags: { offset: 48, size: 4 },
  },
  // sizeof(struct cmsghdr)=16: cmsg_len size_t @0, level @8, type @12; CMSG_LEN(0)=16; CMSG_SPACE(1)-CMSG_SPACE(0)=8
  cmsg: { headerSize: 16, headerLen: 16, align: 8, len: { offset: 0, size: 8 }, level: { offset: 8, size: 4 }, type: { offset: 12, size: 4 } },
  // struct epoll_event is __attribute__((packed)) on x86_64: 12 bytes, data @4 (bun-facts Q8)
  epollEvent: { size: 12, events: { offset: 0, size: 4 }, data: { offset: 4, size: 8 } },
  maxSendControlBytes: null,
};
