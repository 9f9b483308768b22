/**
 * Linux x86_64, musl: musl's 4-byte length fields (linux-common.ts muslLayout) and x86_64's packed
 * epoll_event (musl packs it on x86_64 too, docs/design.md, "Per-ABI facts"). musl maps any libc.* soname to itself; this is
 * the canonical one (docs/design.md, "Per-ABI facts").
 */
import type { Abi } from "./abi.ts";
import { epollX64, muslLayout, linuxShared } from "./linux-common.ts";

export const abi: Abi = {
  ...linuxShared,
  ...muslLayout,
  name: "linux-x64-musl",
  arch: "x64",
  libc: "musl",
  libName: "libc.musl-x86_64.so.1",
  epollEvent: epollX64,
};
