/**
 * libc bound through bun:ffi dlopen, one symbol table per OS (a single missing symbol makes the whole
 * dlopen throw, docs/design.md, "Pointers and buffers"). No C is compiled. Each thread (the main thread, the reactor Worker)
 * evaluates this module once and caches its own errno address: errno is thread-local.
 *
 * Variadic functions: fcntl(fd, cmd, arg) declared with three fixed ints is correct on Linux x86_64
 * and aarch64 and darwin-x64 (variadics travel in the same registers). Apple arm64 passes variadic
 * arguments on the stack, so there fcntl is declared with six dummy register arguments before `arg`,
 * which pushes `arg` into the first stack slot where the callee's va_arg reads it. CLOEXEC after
 * recvmsg uses ioctl(FIOCLEX), which has no variadic argument at all.
 */
import { dlopen, FFIType, read, type FFIFunction } from "bun:ffi";
import { abi } from "./index.ts";

const common = {
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  socketpair: { args: ["i32", "i32", "i32", "ptr"], returns: "i32" },
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  listen: { args: ["i32", "i32"], returns: "i32" },
  connect: { args: ["i32", "ptr", "u32"], returns: "i32" },
  getsockopt: { args: ["i32", "i32", "i32", "ptr", "ptr"], returns: "i32" },
  setsockopt: { args: ["i32", "i32", "i32", "ptr", "u32"], returns: "i32" },
  getsockname: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  getpeername: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  sendmsg: { args: ["i32", "ptr", "i32"], returns: FFIType.i64_fast },
  recvmsg: { args: ["i32", "ptr", "i32"], returns: FFIType.i64_fast },
  ioctl: { args: ["i32", "u64"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  read: { args: ["i32", "ptr", "u64"], returns: FFIType.i64_fast },
  write: { args: ["i32", "ptr", "u64"], returns: FFIType.i64_fast },
  poll: { args: ["ptr", "u64", "i32"], returns: "i32" },
  shutdown: { args: ["i32", "i32"], returns: "i32" },
  unlink: { args: ["ptr"], returns: "i32" },
  chmod: { args: ["ptr", "u32"], returns: "i32" },
  getpid: { args: [], returns: "i32" },
  getuid: { args: [], returns: "u32" },
  geteuid: { args: [], returns: "u32" },
  getgid: { args: [], returns: "u32" },
  getrlimit: { args: ["i32", "ptr"], returns: "i32" },
} as const satisfies Record<string, FFIFunction>;

const fcntl3 = { fcntl: { args: ["i32", "i32", "i32"], returns: "i32" } } as const satisfies Record<string, FFIFunction>;

const linux = {
  ...common,
  ...fcntl3,
  __errno_location: { args: [], returns: "ptr" },
  accept4: { args: ["i32", "ptr", "ptr", "i32"], returns: "i32" },
  dup3: { args: ["i32", "i32", "i32"], returns: "i32" },
  pipe2: { args: ["ptr", "i32"], returns: "i32" },
  epoll_create1: { args: ["i32"], returns: "i32" },
  epoll_ctl: { args: ["i32", "i32", "i32", "ptr"], returns: "i32" },
  epoll_wait: { args: ["i32", "ptr", "i32", "i32"], returns: "i32" },
  eventfd: { args: ["u32", "i32"], returns: "i32" },
} as const satisfies Record<string, FFIFunction>;

const bsd = {
  ...common,
  __error: { args: [], returns: "ptr" },
  accept: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  pipe: { args: ["ptr"], returns: "i32" },
  kqueue: { args: [], returns: "i32" },
  kevent: { args: ["i32", "ptr", "i32", "ptr", "i32", "ptr"], returns: "i32" },
  getpeereid: { args: ["i32", "ptr", "ptr"], returns: "i32" },
} as const satisfies Record<string, FFIFunction>;

const fcntlAppleArm64 = {
  // See the header comment: six dummies fill x2..x7 so `arg` lands in the first stack slot.
  fcntl: { args: ["i32", "i32", "i64", "i64", "i64", "i64", "i64", "i64", "i32"], returns: "i32" },
} as const satisfies Record<string, FFIFunction>;

type LinuxSymbols = ReturnType<typeof dlopen<typeof linux>>["symbols"];
type BsdSymbols = ReturnType<typeof dlopen<typeof bsd & typeof fcntl3>>["symbols"];

/** Linux symbols; on BSD-derived ABIs the Linux-only entries are absent (check `abi.os` first). */
export type Libc = LinuxSymbols & Partial<BsdSymbols>;

function open(): { symbols: Libc; errnoPtr: number } {
  if (abi.os === "linux") {
    const lib = dlopen(abi.libName, linux);
    return { symbols: lib.symbols as Libc, errnoPtr: Number(lib.symbols.__errno_location()) };
  }
  const table = abi.os === "darwin" && abi.arch === "arm64" ? { ...bsd, ...fcntlAppleArm64 } : { ...bsd, ...fcntl3 };
  const lib = dlopen(abi.libName, table);
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
