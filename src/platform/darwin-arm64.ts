/**
 * macOS (Darwin) arm64 (Apple silicon). Same LP64 little-endian ABI as darwin-x64 for every struct and
 * constant in the table: xnu's headers (socket.h, event.h, ucred.h, resource.h, un.h, fcntl.h, filio.h,
 * errno.h) have no arm64-specific member or value for anything used here, and the Rust libc crate
 * defines these items once for all Apple targets (src/unix/bsd/apple/mod.rs, src/unix/bsd/mod.rs).
 * See darwin-x64.ts for the per-value sources.
 *
 * The one arm64 difference that matters is in calling, not layout: variadic arguments (fcntl's third,
 * ioctl's third) go on the stack under Apple's arm64 ABI, so a fixed-arity bun:ffi binding passes them
 * in the wrong place (docs/design.md, "Per-ABI facts"). The table's cloexec strategy ("ioctl_fioclex": FIOCLEX takes no
 * argument) avoids the problem for CLOEXEC; any other variadic call must be bound with care.
 */
import type { Abi } from "./abi.ts";
import { darwinShared } from "./darwin-x64.ts";

export const abi: Abi = {
  ...darwinShared,
  name: "darwin-arm64",
  arch: "arm64",
};
