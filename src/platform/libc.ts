/**
 * libc bound through bun:ffi dlopen with the OS's symbol set from symbols.ts (a single missing symbol
 * makes the whole dlopen throw, docs/design.md, "Pointers and buffers"). No C is compiled. Each thread (the main thread, the
 * reactor Worker) evaluates this module once and caches its own errno address: errno is thread-local.
 * On darwin-arm64 the padded variadic fcntl binding (symbols.ts) is wrapped back to three arguments.
 */
import { dlopen, read } from "bun:ffi";
import { abi } from "./index.ts";
import { darwinArm64Symbols, linuxSymbols, symbolSetFor } from "./symbols.ts";
import { seam } from "./seam.ts";

// The test seam's fake libc (seam.ts) or the real one.
const open_ = (seam !== null ? seam.dlopen : dlopen) as typeof dlopen;

type LinuxSymbols = ReturnType<typeof dlopen<typeof linuxSymbols>>["symbols"];
type BsdSymbols = Omit<ReturnType<typeof dlopen<typeof darwinArm64Symbols>>["symbols"], "fcntl">;

/** Linux symbols; on BSD-derived ABIs the Linux-only entries are absent (check `abi.os` first). */
export type Libc = LinuxSymbols & Partial<BsdSymbols>;

function open(): { symbols: Libc; errnoPtr: number } {
  if (abi.os === "linux") {
    const lib = open_(abi.libName, linuxSymbols);
    return { symbols: lib.symbols as Libc, errnoPtr: Number(lib.symbols.__errno_location()) };
  }
  const lib = open_(abi.libName, symbolSetFor(abi));
  const s = lib.symbols as unknown as Record<string, (...a: unknown[]) => unknown>;
  if (abi.os === "darwin" && abi.arch === "arm64") {
    const raw = s.fcntl!;
    s.fcntl = (fd: unknown, cmd: unknown, arg: unknown) => raw(fd, cmd, 0, 0, 0, 0, 0, 0, arg);
  }
  return { symbols: s as unknown as Libc, errnoPtr: Number((s.__error as () => unknown)()) };
}

const opened = open();
/** The bound libc functions for this thread. */
export const libc: Libc = opened.symbols;
const errnoPtr = opened.errnoPtr;

/** This thread's errno. Read it immediately after a call returned -1, with nothing in between. */
export function errno(): number {
  return read.i32(errnoPtr as unknown as Parameters<typeof read.i32>[0], 0);
}
