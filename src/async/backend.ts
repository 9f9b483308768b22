/**
 * What the reactor needs from a readiness backend (epoll on Linux, kqueue on darwin/FreeBSD), and the
 * readiness bits every backend reports in. Ownership: see each backend's file.
 */
import type { ReactorWorkerData } from "./reactor-worker.ts";

/** Interest / readiness bits shared by every backend. */
export const READABLE = 1;
export const WRITABLE = 2;
/** Error or hang-up: the fd is "ready" for both interests (the caller's syscall reports the error). */
export const FAILED = 4;
/** The token reserved for the wake-up source. */
export const WAKE_TOKEN = 0;

/** A JS thread's readiness backend (the Worker only waits on `pollFd`). */
export interface Backend {
  readonly name: "epoll" | "kqueue";
  /** The epoll/kqueue fd, handed to the Worker as a number. */
  readonly pollFd: number;
  /** The eventfd (epoll) or -1 (kqueue wakes through EVFILT_USER on pollFd). */
  readonly wakeFd: number;
  /** What the Worker needs to wait on `pollFd` and report (token, status) pairs. */
  workerData(maxEvents: number): ReactorWorkerData;
  /** Readiness mask (READABLE | WRITABLE | FAILED) for a `status` the Worker reported. */
  maskFor(status: number): number;
  /**
   * Arms `fd` one-shot for `mask` (READABLE | WRITABLE) under `token`. `inSet` says whether the fd
   * is believed to be registered already (MOD) or not (ADD); the other op is tried when the kernel
   * disagrees (the fd was closed behind the reactor's back, or its number reused). Throws SystemError.
   */
  arm(fd: number, token: number, mask: number, inSet: boolean): void;
  /** Removes `fd` from the set. ENOENT/EBADF (never registered, or already closed) are ignored. */
  remove(fd: number): void;
  /** Makes the Worker's wait return with the wake token (used for shutdown). */
  wake(): void;
  /** Consumes a wake-up, after the Worker it stopped has gone, so a restarted Worker does not stop at once. */
  clearWake(): void;
}
