/**
 * The libc symbol sets handed to bun:ffi dlopen, per OS, and the declared list of every libc function
 * the library can call, with the ABI flags under which it calls it. Pure data: no FFI, no side
 * effects, so tests can check every ABI's binding without loading a libc (test/platform-bindings.test.ts
 * cross-checks LIBC_CALLS against a scan of `libc.<name>` uses in src/ and each symbol set against the C
 * prototypes). A single missing symbol makes the whole dlopen throw, so a set must bind exactly what
 * exists on that OS.
 *
 * Variadic functions: fcntl(fd, cmd, arg) declared with three fixed ints is correct on Linux x86_64
 * and aarch64, darwin-x64 and FreeBSD amd64 (variadics travel in the same registers). Apple arm64
 * passes variadic arguments on the stack, so there fcntl is declared with six dummy register
 * arguments before `arg`, which pushes `arg` into the first stack slot where the callee's va_arg reads
 * it (libc.ts wraps it back to three arguments). CLOEXEC after recvmsg uses ioctl(FIOCLEX), which has
 * no variadic argument at all.
 */
import { FFIType, type FFIFunction } from "bun:ffi";
import type { Abi } from "./abi.ts";

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

export const linuxSymbols = {
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
  // nfds_t is unsigned int and mode_t __uint16_t on darwin and FreeBSD (unsigned long / unsigned int on Linux)
  poll: { args: ["ptr", "u32", "i32"], returns: "i32" },
  chmod: { args: ["ptr", "u16"], returns: "i32" },
  __error: { args: [], returns: "ptr" },
  accept: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  pipe: { args: ["ptr"], returns: "i32" },
  kqueue: { args: [], returns: "i32" },
  kevent: { args: ["i32", "ptr", "i32", "ptr", "i32", "ptr"], returns: "i32" },
  getpeereid: { args: ["i32", "ptr", "ptr"], returns: "i32" },
} as const satisfies Record<string, FFIFunction>;

export const darwinX64Symbols = { ...bsd, ...fcntl3 } as const satisfies Record<string, FFIFunction>;

export const darwinArm64Symbols = {
  ...bsd,
  // Six dummies fill x2..x7 so `arg` lands in the first stack slot (header comment).
  fcntl: { args: ["i32", "i32", "i64", "i64", "i64", "i64", "i64", "i64", "i32"], returns: "i32" },
} as const satisfies Record<string, FFIFunction>;

export const freebsdSymbols = {
  ...bsd,
  ...fcntl3,
  // FreeBSD has accept4 (since 10.0, socket.h under __BSD_VISIBLE) and the table says hasAccept4, so
  // sys.accept calls it; darwin has none and uses accept + FIOCLEX.
  accept4: { args: ["i32", "ptr", "ptr", "i32"], returns: "i32" },
} as const satisfies Record<string, FFIFunction>;

/** The symbol set dlopen gets for `abi`. */
export function symbolSetFor(abi: Pick<Abi, "os" | "arch">): Record<string, FFIFunction> {
  if (abi.os === "linux") return linuxSymbols;
  if (abi.os === "darwin") return abi.arch === "arm64" ? darwinArm64Symbols : darwinX64Symbols;
  return freebsdSymbols;
}

/**
 * Every libc function the library can call, and when. `when` mirrors the branch in the calling code
 * (sys.ts, msg-io.ts, async/*, handoff/epoll.ts, libc.ts); the binding test checks that this list
 * names exactly the functions src/ calls as `libc.<name>`, and that each ABI binds every function
 * whose `when` holds for it.
 */
export const LIBC_CALLS: Readonly<Record<string, (abi: Abi) => boolean>> = {
  // errno address: libc.ts, once per thread
  __errno_location: (a) => a.errnoSymbol === "__errno_location",
  __error: (a) => a.errnoSymbol === "__error",
  // sys.ts: accept4 where the ABI has it, else accept + FIOCLEX
  accept4: (a) => a.hasAccept4,
  accept: (a) => !a.hasAccept4,
  // sys.ts pipe(): pipe2 on Linux, pipe + FIOCLEX elsewhere
  pipe2: (a) => a.os === "linux",
  pipe: (a) => a.os !== "linux",
  // async reactor: epoll + eventfd on Linux, kqueue elsewhere (the reactor Worker binds its own
  // epoll_wait/kevent and errno function: src/async/reactor-worker.ts, checked by the same test);
  // handoff/epoll.ts (Linux only) uses dup3
  epoll_create1: (a) => a.os === "linux",
  epoll_ctl: (a) => a.os === "linux",
  eventfd: (a) => a.os === "linux",
  dup3: (a) => a.os === "linux",
  kqueue: (a) => a.os !== "linux",
  kevent: (a) => a.os !== "linux",
  // write/read: the epoll backend's eventfd wake-up and drain
  write: (a) => a.os === "linux",
  read: (a) => a.os === "linux",
  // everywhere
  socket: () => true,
  socketpair: () => true,
  bind: () => true,
  listen: () => true,
  connect: () => true,
  getsockopt: () => true,
  setsockopt: () => true,
  getsockname: () => true,
  getpeername: () => true,
  sendmsg: () => true,
  recvmsg: () => true,
  ioctl: () => true,
  fcntl: () => true,
  close: () => true,
  poll: () => true,
  shutdown: () => true,
  unlink: () => true,
  chmod: () => true,
  getpid: () => true,
  getuid: () => true,
  geteuid: () => true,
  getgid: () => true,
  getrlimit: () => true,
};
