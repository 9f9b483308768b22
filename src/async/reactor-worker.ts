/**
 * The reactor Worker: blocks in epoll_wait(-1) (kevent() on darwin/FreeBSD) and reports readiness to
 * its parent thread as flat batches [token, status, token, status, ...]. It never reads a socket,
 * never creates, owns or closes an fd: the poll fd and wake fd belong to the parent thread
 * (src/async/reactor.ts), which also does every epoll_ctl/kevent change and turns `status` into a
 * readiness mask (`Backend.maskFor`).
 *
 * Bundler- and compile-proof: the Worker is started from a Blob URL whose source is
 * `reactorWorkerMain.toString()`, so no file has to sit next to a `bun build` bundle or inside a
 * `bun build --compile` executable (a `new URL("./reactor-worker.ts", import.meta.url)` Worker fails
 * there with ModuleNotFound). `reactorWorkerMain` is therefore self-contained: it references nothing
 * from this module's scope, gets `bun:ffi` and its parameters as arguments, and uses plain
 * JavaScript only (a bundler may rename but must not need to rewrite it). Every ABI fact it needs (libc
 * name, errno symbol, struct size and offsets, EINTR) comes from the parent in `workerData`, taken
 * from src/platform.
 *
 * Notification is postMessage: measured against Atomics.notify -> main-thread Atomics.waitAsync on a
 * SharedArrayBuffer ring, postMessage had the lower median (11-18 us vs 19-24 us sendmsg -> wait
 * resolved, 1000 iterations x 5 runs, equal p99 within noise) and needs no shared ring or ack protocol.
 * No `onmessage` handler is ever installed, so once the loop returns (the wake token fired: shutdown)
 * the Worker's event loop is empty and the thread ends by itself (a Worker that keeps an onmessage
 * handler would keep the process alive forever).
 */
import type * as BunFFI from "bun:ffi";
import { workerFfiImport } from "../platform/seam.ts";

/** Everything the Worker needs, from src/platform, as plain data. */
export interface ReactorWorkerData {
  backend: "epoll" | "kqueue";
  pollFd: number;
  maxEvents: number;
  libName: string;
  errnoSymbol: "__errno_location" | "__error";
  EINTR: number;
  /** Size of one struct epoll_event / struct kevent. */
  recordSize: number;
  /** Offset of the 64-bit token (epoll_event.data / kevent.udata), little-endian. */
  tokenOffset: number;
  /** Offset of the u32 reported verbatim as `status` (epoll_event.events / kevent.filter+flags). */
  statusOffset: number;
}

/** Messages from the Worker. A batch is a plain number[]; anything else is one of these. */
export type ReactorWorkerMessage = number[] | { type: "stopped" } | { type: "error"; syscall: string; errno: number; message: string };

/**
 * The Worker's whole program. Self-contained (see the header): `.toString()` of this function is the
 * Worker source. Token 0 is the wake source (eventfd on Linux, EVFILT_USER on kqueue): it ends the loop.
 * @internal
 */
export function reactorWorkerMain(ffi: typeof BunFFI, data: ReactorWorkerData, post: (m: ReactorWorkerMessage) => void): void {
  const syms: Record<string, BunFFI.FFIFunction> = {};
  syms[data.errnoSymbol] = { args: [], returns: "ptr" };
  if (data.backend === "epoll") syms.epoll_wait = { args: ["i32", "ptr", "i32", "i32"], returns: "i32" };
  else syms.kevent = { args: ["i32", "ptr", "i32", "ptr", "i32", "ptr"], returns: "i32" };
  const lib = ffi.dlopen(data.libName, syms);
  const s = lib.symbols as unknown as Record<string, (...a: unknown[]) => unknown>;
  const errnoPtr = s[data.errnoSymbol]!() as BunFFI.Pointer;
  // The event buffer is passed as the typed array itself (never a saved ptr() number), so the call
  // keeps it reachable: an address alone does not stop the GC from freeing the array under the kernel.
  const buf = new Uint8Array(new ArrayBuffer(data.recordSize * data.maxEvents));
  const view = new DataView(buf.buffer);
  const waitOnce =
    data.backend === "epoll"
      ? () => s.epoll_wait!(data.pollFd, buf, data.maxEvents, -1) as number
      : () => s.kevent!(data.pollFd, null, 0, buf, data.maxEvents, null) as number;
  try {
    for (;;) {
      let n: number;
      for (;;) {
        n = waitOnce();
        if (n >= 0) break;
        const e = ffi.read.i32(errnoPtr, 0);
        if (e !== data.EINTR) {
          post({ type: "error", syscall: data.backend === "epoll" ? "epoll_wait" : "kevent", errno: e, message: `${data.backend === "epoll" ? "epoll_wait" : "kevent"} failed (errno ${e})` });
          return;
        }
      }
      const out: number[] = [];
      let more = true;
      for (let i = 0; i < n; i++) {
        const at = i * data.recordSize;
        const token = view.getUint32(at + data.tokenOffset, true) + view.getUint32(at + data.tokenOffset + 4, true) * 0x1_0000_0000;
        if (token === 0) more = false;
        else out.push(token, view.getUint32(at + data.statusOffset, true));
      }
      if (out.length > 0) post(out);
      if (!more) break;
    }
    post({ type: "stopped" });
  } catch (e) {
    post({ type: "error", syscall: "", errno: 0, message: String((e as { message?: unknown })?.message ?? e) });
  }
}

let url: string | null = null;

/**
 * A Blob URL for the Worker, created once per thread (kept: a restarted reactor reuses it). The module
 * imports are the only lines outside `reactorWorkerMain`.
 * @internal
 */
export function reactorWorkerUrl(): string {
  if (url !== null) return url;
  const source =
    workerFfiImport() + // `import * as ffi from "bun:ffi"` (or the test seam's, src/platform/seam.ts)
    `import { workerData } from "node:worker_threads";\n` +
    `(${reactorWorkerMain.toString()})(ffi, workerData, (m) => postMessage(m));\n`;
  url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  return url;
}
