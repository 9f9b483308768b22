/**
 * Ties fds to the lifetime of the current JS thread (the main thread or one Worker).
 *
 * Ownership contract: an anchored fd belongs to this module from then on; nothing else may close it.
 * It is closed exactly once, by the runtime, when this thread's heap is torn down: a Worker that is
 * terminated, calls process.exit(), or simply runs out of work (measured on Bun 1.4.5; the process
 * exit closes the main thread's).
 *
 * Why: no JavaScript runs on a Worker after `worker.terminate()` (nor on the reactor Worker it
 * started, which Bun terminates with it), so a `close` listener or a FinalizationRegistry callback
 * never gets to close the reactor's epoll fd and eventfd: each terminated Worker leaked 2 fds. Native
 * code does run: JavaScriptCore calls an external ArrayBuffer's deallocator, `void (*)(void *bytes,
 * void *ctx)`, when it frees the buffer, which a torn-down heap does. Each fd is wrapped in a stdio
 * FILE (fdopen), the buffer views the FILE's own memory and its deallocator is fclose: freeing the
 * buffer closes the fd. (An earlier version used the fd number itself as the address with `close` as
 * the deallocator; Bun crashed now and then with a buffer over memory that does not exist.) The
 * buffers are never read and are kept reachable from this module until the heap goes away, so a GC
 * cannot close an fd early.
 */
import { dlopen, toArrayBuffer } from "bun:ffi";
import { abi, K } from "../platform/index.ts";
import { errno, libc } from "../platform/libc.ts";
import { SystemError } from "../errors.ts";
import { seam } from "../platform/seam.ts";

const stdioSymbols = {
  fdopen: { args: ["i32", "ptr"], returns: "ptr" },
  fclose: { args: ["ptr"], returns: "i32" },
} as const;
let stdioLib: ReturnType<typeof dlopen<typeof stdioSymbols>> | null = null;
/** Bound on first use (not at import: most processes never start a reactor). */
function stdio(): ReturnType<typeof dlopen<typeof stdioSymbols>> {
  return (stdioLib ??= dlopen(abi.libName, stdioSymbols));
}
const MODE = new TextEncoder().encode("r+\0");

/** Never read: holding them is what keeps their fds open until this thread's heap is freed. */
const anchors: ArrayBuffer[] = [];

/**
 * Returns `fd`, or (for fd 0, which cannot be an address) a CLOEXEC duplicate above it, closing 0.
 * Call before the number is published anywhere (epoll set, Worker data).
 */
export function anchorableFd(fd: number): number {
  if (fd !== 0) return fd;
  const moved = libc.fcntl(fd, K.F_DUPFD_CLOEXEC, 1);
  const e = errno();
  libc.close(fd);
  if (moved < 0) throw new SystemError("fcntl", e);
  return moved;
}

/**
 * Hands `fds` to the thread: closed when its heap is torn down, not before. All or nothing: if it
 * throws, every fd is still the caller's.
 */
export function anchorToThread(fds: readonly number[]): void {
  // Under the fake-libc test seam there is no real stdio to bind: the fds simply live until exit.
  if (seam !== null) return;
  // Each fd is wrapped in a stdio FILE (fdopen: no syscall, no new fd); the buffer views that FILE's
  // real memory and its deallocator is fclose, which closes the fd and frees the FILE.
  const files: number[] = [];
  for (const fd of fds) {
    const f = Number(stdio().symbols.fdopen(fd, MODE));
    if (f === 0) {
      const e = errno();
      // Not fclose (the fds stay the caller's) and not free (libc lists open FILEs): the few bytes of
      // a FILE made before an out-of-memory failure stay allocated.
      throw new SystemError("fdopen", e);
    }
    files.push(f);
  }
  const fclose = (stdio().symbols.fclose as unknown as { ptr: number }).ptr;
  // bun-types leaves out the deallocator parameter that Bun's toArrayBuffer takes (documented in its FFI guide).
  const withDeallocator = toArrayBuffer as unknown as (bytes: number, offset: number, length: number, deallocator: number) => ArrayBuffer;
  for (const f of files) anchors.push(withDeallocator(f, 0, 1, fclose));
}

/** How many fds this thread has anchored (diagnostics and tests). */
export function anchoredCount(): number {
  return anchors.length;
}
