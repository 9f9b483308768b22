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
 * void *ctx)`, when it frees the buffer. With libc's `close` as the deallocator and the fd number as
 * the `bytes` address, freeing the buffer is `close(fd)`. The buffer is never read (its address is not
 * memory) and is kept reachable from this module until the heap goes away, so a GC cannot close the fd
 * early.
 */
import { toArrayBuffer } from "bun:ffi";
import { K } from "../platform/index.ts";
import { errno, libc } from "../platform/libc.ts";
import { SystemError } from "../errors.ts";

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
 * Hands `fds` (each > 0, see anchorableFd) to the thread: closed when its heap is torn down, not
 * before. All or nothing: if it throws, every fd is still the caller's.
 */
export function anchorToThread(fds: readonly number[]): void {
  const closeAddr = (libc.close as unknown as { ptr: number }).ptr;
  // bun-types leaves out the deallocator parameter that Bun's toArrayBuffer takes (documented in its FFI guide).
  const withDeallocator = toArrayBuffer as unknown as (bytes: number, offset: number, length: number, deallocator: number) => ArrayBuffer;
  const made = fds.map((fd) => withDeallocator(fd, 0, 1, closeAddr));
  anchors.push(...made);
}

/** How many fds this thread has anchored (diagnostics and tests). */
export function anchoredCount(): number {
  return anchors.length;
}
