/**
 * Linux readiness backend for the reactor: one epoll set plus one eventfd for wake-up.
 *
 * `createEpollBackend()` runs on the JS thread that uses async I/O: it creates the epoll fd and the
 * eventfd, and arms/disarms fds with epoll_ctl, which is thread-safe against a concurrent epoll_wait in
 * the reactor Worker (src/async/reactor-worker.ts, which reports (token, events) pairs; `maskFor`
 * turns the events into a readiness mask here).
 *
 * Ownership: both fds belong to the JS thread for its whole life. They are never closed by a method:
 * `anchorToThread` closes them when that thread's heap is torn down (a Worker terminated or ended), so
 * no number can be closed twice, and a terminated Worker leaks nothing.
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
import { abi, K } from "../platform/index.ts";
import { errno, libc } from "../platform/libc.ts";
import { SystemError } from "../errors.ts";
import { anchorableFd, anchorToThread } from "./thread-lifetime.ts";
import { readUnsigned, writeUnsigned } from "../cmsg/fields.ts";
import { FAILED, READABLE, WAKE_TOKEN, WRITABLE, type Backend } from "./backend.ts";

type EpollEventLayout = NonNullable<typeof abi.epollEvent>;

function layout(): NonNullable<typeof abi.epollEvent> {
  const l = abi.epollEvent;
  if (!l) throw new Error(`unix-ancillary: no epoll_event layout for ${abi.name}`);
  return l;
}

/** Writes one struct epoll_event at `base`. Exported for the layout test. */
export function encodeEpollEvent(l: EpollEventLayout, view: DataView, base: number, events: number, token: number): void {
  writeUnsigned(view, base, l.events, events >>> 0);
  writeUnsigned(view, base, l.data, token);
}

/** Reads one struct epoll_event at `base`. */
export function decodeEpollEvent(l: EpollEventLayout, view: DataView, base: number): { events: number; token: number } {
  return { events: readUnsigned(view, base, l.events), token: readUnsigned(view, base, l.data) };
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

function ctl(epfd: number, op: number, fd: number, event: Uint8Array): number {
  for (;;) {
    const r = libc.epoll_ctl(epfd, op, fd, event);
    if (r === 0) return 0;
    const e = errno();
    if (e !== abi.errno.EINTR) return e;
  }
}

export function createEpollBackend(): Backend {
  const l = layout();
  const ep0 = libc.epoll_create1(K.EPOLL_CLOEXEC);
  if (ep0 < 0) throw new SystemError("epoll_create1", errno());
  const epfd = anchorableFd(ep0);
  const ef0 = libc.eventfd(0, K.EFD_NONBLOCK | K.EFD_CLOEXEC);
  if (ef0 < 0) {
    const e = errno();
    libc.close(epfd);
    throw new SystemError("eventfd", e);
  }
  let efd: number;
  try {
    efd = anchorableFd(ef0);
  } catch (e) {
    libc.close(epfd);
    throw e;
  }
  // Scratch buffers, passed to libc as typed arrays (never as a saved ptr() number): the call itself
  // keeps each one reachable, and the closures below reference them, so they live as long as the
  // backend. A saved address alone does not keep its array alive: `one` and `drain` were once held only
  // as ptr() numbers, the GC freed them, and wake() wrote a reused (zero) word into the eventfd (a
  // no-op, so a restarted Worker never woke) while clearWake() read 8 bytes into freed memory.
  const buf = new Uint8Array(new ArrayBuffer(l.size));
  const view = new DataView(buf.buffer);
  const one = new BigUint64Array(new ArrayBuffer(8));
  one[0] = 1n;

  encodeEpollEvent(l, view, 0, K.EPOLLIN, WAKE_TOKEN);
  const e0 = ctl(epfd, K.EPOLL_CTL_ADD, efd, buf);
  if (e0 !== 0) {
    libc.close(efd);
    libc.close(epfd);
    throw new SystemError("epoll_ctl", e0);
  }
  try {
    anchorToThread([epfd, efd]);
  } catch (e) {
    libc.close(efd);
    libc.close(epfd);
    throw e;
  }
  const drain = new BigUint64Array(new ArrayBuffer(8));

  return {
    name: "epoll",
    pollFd: epfd,
    wakeFd: efd,
    workerData: (maxEvents) => ({
      backend: "epoll",
      pollFd: epfd,
      maxEvents,
      libName: abi.libName,
      errnoSymbol: abi.errnoSymbol,
      EINTR: abi.errno.EINTR,
      recordSize: l.size,
      tokenOffset: l.data.offset,
      statusOffset: l.events.offset,
    }),
    maskFor: maskForEpollEvents,
    arm(fd, token, mask, inSet) {
      encodeEpollEvent(l, view, 0, epollEventsFor(mask), token);
      const first = inSet ? K.EPOLL_CTL_MOD : K.EPOLL_CTL_ADD;
      let e = ctl(epfd, first, fd, buf);
      if (e === abi.errno.ENOENT && first === K.EPOLL_CTL_MOD) e = ctl(epfd, K.EPOLL_CTL_ADD, fd, buf);
      else if (e === abi.errno.EEXIST && first === K.EPOLL_CTL_ADD) e = ctl(epfd, K.EPOLL_CTL_MOD, fd, buf);
      if (e !== 0) throw new SystemError("epoll_ctl", e);
    },
    remove(fd) {
      // A non-null event pointer keeps pre-2.6.9 semantics happy; the kernel ignores it for DEL.
      const e = ctl(epfd, K.EPOLL_CTL_DEL, fd, buf);
      if (e !== 0 && e !== abi.errno.ENOENT && e !== abi.errno.EBADF) throw new SystemError("epoll_ctl", e);
    },
    wake() {
      for (;;) {
        const r = Number(libc.write(efd, one, 8));
        if (r >= 0) return;
        const e = errno();
        // EAGAIN: the counter is saturated, so the worker is being woken anyway.
        if (e !== abi.errno.EINTR) return;
      }
    },
    clearWake() {
      // Non-blocking eventfd: one read resets the counter, EAGAIN means it was 0 already.
      while (Number(libc.read(efd, drain, 8)) < 0 && errno() === abi.errno.EINTR);
    },
  };
}
