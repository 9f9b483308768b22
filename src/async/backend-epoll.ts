/**
 * Linux readiness backend for the reactor: one epoll set plus one eventfd for wake-up.
 *
 * Split in two halves that run on different threads:
 * - `createEpollBackend()` (main thread): creates the epoll fd and the eventfd, and arms/disarms fds
 *   with epoll_ctl, which is thread-safe against a concurrent epoll_wait in the reactor Worker.
 * - `createEpollPoller()` (reactor Worker): blocks in epoll_wait(-1) and decodes events into
 *   (token, mask) pairs. It never reads a socket and never closes an fd.
 *
 * Each fd has at most one registration, carrying the union of the interests currently waited for,
 * always with EPOLLONESHOT: after one report the kernel disables the whole registration until the
 * main thread re-arms it with EPOLL_CTL_MOD (only while someone still waits). The 64-bit data field
 * holds a token chosen by the reactor (a registration id), never the fd number, so an event for an
 * old registration can't be mistaken for a new one on a reused fd number. Token 0 is the eventfd.
 *
 * struct epoll_event is 12 bytes packed (data @4) on x86_64 and 16 bytes (data @8) on aarch64: the
 * layout comes from `abi.epollEvent`, never from a literal.
 */
import { ptr } from "bun:ffi";
import { abi, K } from "../platform/index.ts";
import { errno, libc } from "../platform/libc.ts";
import { SystemError } from "../errors.ts";
import { retry, retryEintr } from "../sys.ts";

/** Interest / readiness bits shared by every backend. */
export const READABLE = 1;
export const WRITABLE = 2;
/** Error or hang-up: the fd is "ready" for both interests (the caller's syscall reports the error). */
export const FAILED = 4;
/** The token reserved for the wake-up source. */
export const WAKE_TOKEN = 0;

/** Main-thread half of a backend. */
export interface Backend {
  readonly name: "epoll" | "kqueue";
  /** The epoll/kqueue fd, handed to the Worker as a number. */
  readonly pollFd: number;
  /** The eventfd (epoll) or -1 (kqueue wakes through EVFILT_USER on pollFd). */
  readonly wakeFd: number;
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
  /** Closes the poll fd and the wake fd. Only after the Worker has stopped waiting on them. */
  close(): void;
}

/** Worker-side half: one blocking wait, results appended to `out` as token, mask, token, mask... */
export interface Poller {
  /** Blocks until at least one event; EINTR is retried. Returns false if the wake source fired. */
  wait(out: number[]): boolean;
}

const TWO32 = 0x1_0000_0000;

function layout(): NonNullable<typeof abi.epollEvent> {
  const l = abi.epollEvent;
  if (!l) throw new Error(`unix-ancillary: no epoll_event layout for ${abi.name}`);
  return l;
}

/** Writes one struct epoll_event at `base`. Exported for the layout test. */
export function encodeEpollEvent(l: { events: { offset: number }; data: { offset: number } }, view: DataView, base: number, events: number, token: number): void {
  view.setUint32(base + l.events.offset, events >>> 0, true);
  view.setUint32(base + l.data.offset, token % TWO32, true);
  view.setUint32(base + l.data.offset + 4, Math.floor(token / TWO32), true);
}

/** Reads one struct epoll_event at `base`. */
export function decodeEpollEvent(l: { events: { offset: number }; data: { offset: number } }, view: DataView, base: number): { events: number; token: number } {
  return {
    events: view.getUint32(base + l.events.offset, true),
    token: view.getUint32(base + l.data.offset, true) + view.getUint32(base + l.data.offset + 4, true) * TWO32,
  };
}

/** epoll events for an interest mask. EPOLLRDHUP with reads: a peer's shutdown(SHUT_WR) wakes a reader. */
export function epollEventsFor(mask: number): number {
  let ev = K.EPOLLONESHOT;
  if (mask & READABLE) ev |= K.EPOLLIN | K.EPOLLRDHUP;
  if (mask & WRITABLE) ev |= K.EPOLLOUT;
  return ev;
}

/** Readiness mask for received epoll events. */
export function maskForEpollEvents(ev: number): number {
  let m = 0;
  if (ev & (K.EPOLLIN | K.EPOLLRDHUP)) m |= READABLE;
  if (ev & K.EPOLLOUT) m |= WRITABLE;
  if (ev & (K.EPOLLERR | K.EPOLLHUP)) m |= READABLE | WRITABLE | FAILED;
  return m;
}

function ctl(epfd: number, op: number, fd: number, p: number | null): number {
  const r = retryEintr(() => libc.epoll_ctl(epfd, op, fd, p as never));
  return r >= 0 ? 0 : -r;
}

export function createEpollBackend(): Backend {
  const l = layout();
  const epfd = libc.epoll_create1(K.EPOLL_CLOEXEC);
  if (epfd < 0) throw new SystemError("epoll_create1", errno());
  const efd = libc.eventfd(0, K.EFD_NONBLOCK | K.EFD_CLOEXEC);
  if (efd < 0) {
    const e = errno();
    libc.close(epfd);
    throw new SystemError("eventfd", e);
  }
  // Scratch for epoll_ctl; module-level lifetime through the closure.
  const buf = new Uint8Array(l.size);
  const view = new DataView(buf.buffer);
  const p = ptr(buf);
  // Every buffer handed to libc sits on an explicit ArrayBuffer (or had .buffer touched before ptr()):
  // JSC may move the inline storage of a small typed array, which would strand an earlier ptr().
  const one = new BigUint64Array(new ArrayBuffer(8));
  one[0] = 1n;
  const oneP = ptr(one);

  encodeEpollEvent(l, view, 0, K.EPOLLIN, WAKE_TOKEN);
  const e0 = ctl(epfd, K.EPOLL_CTL_ADD, efd, p);
  if (e0 !== 0) {
    libc.close(efd);
    libc.close(epfd);
    throw new SystemError("epoll_ctl", e0);
  }

  let closed = false;
  return {
    name: "epoll",
    pollFd: epfd,
    wakeFd: efd,
    arm(fd, token, mask, inSet) {
      encodeEpollEvent(l, view, 0, epollEventsFor(mask), token);
      const first = inSet ? K.EPOLL_CTL_MOD : K.EPOLL_CTL_ADD;
      let e = ctl(epfd, first, fd, p);
      if (e === abi.errno.ENOENT && first === K.EPOLL_CTL_MOD) e = ctl(epfd, K.EPOLL_CTL_ADD, fd, p);
      else if (e === abi.errno.EEXIST && first === K.EPOLL_CTL_ADD) e = ctl(epfd, K.EPOLL_CTL_MOD, fd, p);
      if (e !== 0) throw new SystemError("epoll_ctl", e);
    },
    remove(fd) {
      // A non-null event pointer keeps pre-2.6.9 semantics happy; the kernel ignores it for DEL.
      const e = ctl(epfd, K.EPOLL_CTL_DEL, fd, p);
      if (e !== 0 && e !== abi.errno.ENOENT && e !== abi.errno.EBADF) throw new SystemError("epoll_ctl", e);
    },
    wake() {
      if (closed) return;
      // A failure other than EINTR is EAGAIN: the counter is saturated, so the worker is being woken anyway.
      retryEintr(() => Number(libc.write(efd, oneP, 8)));
    },
    close() {
      if (closed) return;
      closed = true;
      libc.close(efd);
      libc.close(epfd);
    },
  };
}

/** Worker side. `maxEvents` bounds one epoll_wait; more ready fds simply arrive in the next call. */
export function createEpollPoller(epfd: number, maxEvents = 256): Poller {
  const l = layout();
  const buf = new Uint8Array(l.size * maxEvents);
  const view = new DataView(buf.buffer);
  const p = ptr(buf);
  return {
    wait(out) {
      const n = retry("epoll_wait", () => libc.epoll_wait(epfd, p, maxEvents, -1));
      let keepGoing = true;
      for (let i = 0; i < n; i++) {
        const { events, token } = decodeEpollEvent(l, view, i * l.size);
        if (token === WAKE_TOKEN) {
          keepGoing = false;
          continue;
        }
        out.push(token, maskForEpollEvents(events));
      }
      return keepGoing;
    },
  };
}
