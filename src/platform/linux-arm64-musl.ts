/**
 * Linux aarch64, musl: musl's 4-byte length fields with aarch64's 16-byte epoll_event. Measured under
 * qemu-aarch64 with musl 1.2.3 (docs/design.md, "Per-ABI facts"), including the ENOMEM above 1024 bytes of control data.
 */
import type { Abi } from "./abi.ts";
import { epollArm64, muslLayout, linuxShared } from "./linux-common.ts";

export const abi: Abi = {
  ...linuxShared,
  ...muslLayout,
  name: "linux-arm64-musl",
  arch: "arm64",
  libc: "musl",
  libName: "libc.musl-aarch64.so.1",
  epollEvent: epollArm64,
};
