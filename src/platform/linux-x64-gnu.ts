/**
 * Linux x86_64, glibc. Verified by a C program on glibc 2.36 (docs/design.md, "Per-ABI facts") and by running the test
 * suite natively here.
 */
import type { Abi } from "./abi.ts";
import { epollX64, gnuLayout, linuxShared } from "./linux-common.ts";

export const abi: Abi = {
  ...linuxShared,
  ...gnuLayout,
  name: "linux-x64-gnu",
  arch: "x64",
  libc: "glibc",
  libName: "libc.so.6",
  epollEvent: epollX64,
};
