/**
 * darwin/FreeBSD readiness backend for the reactor: one kqueue, the mirror of backend-epoll.ts.
 *
 * - Each interest is its own knote (EVFILT_READ / EVFILT_WRITE on ident = fd), added with
 *   EV_ADD | EV_ONESHOT, so a report deletes the knote until the main thread re-adds it (only while
 *   someone still waits). udata carries the reactor's token (a registration id, never the fd number).
 * - Wake-up is an EVFILT_USER knote (ident 0, EV_CLEAR) triggered with NOTE_TRIGGER: no extra fd.
 * - kevent(2) with a changelist and an empty eventlist is thread-safe against the Worker's blocking
 *   kevent() on the same kqueue, like epoll_ctl against epoll_wait.
 *
 * struct kevent is 32 bytes on darwin and 64 on FreeBSD >= 12 (ext[4]); offsets come from `abi.kevent`.
 * Ownership: the kqueue fd belongs to the JS thread for its whole life and is closed when that
 * thread's heap is torn down (src/async/thread-lifetime.ts), never by a method.
 * Not runnable on the Linux CI host: the struct encoding is unit-tested against the darwin/freebsd
 * tables (test/reactor.test.ts).
 */
import type { Abi } from "../platform/abi.ts";
import { abi, K } from "../platform/index.ts";
import { errno, libc } from "../platform/libc.ts";
import { SystemError } from "../errors.ts";
import { setCloexec } from "../sys.ts";
import { readUnsigned, writeUnsigned } from "../cmsg/fields.ts";
import { FAILED, READABLE, WAKE_TOKEN, WRITABLE, type Backend } from "./backend.ts";
import { anchorableFd, anchorToThread } from "./thread-lifetime.ts";

export type KeventLayout = NonNullable<Abi["kevent"]>;

export interface Kevent {
  ident: number;
  filter: number;
  flags: number;
  fflags: number;
  data: number;
  udata: number;
}

/** Writes one struct kevent at `base` (zeroing the rest, e.g. FreeBSD's ext[4]). Exported for tests. */
export function encodeKevent(l: KeventLayout, view: DataView, base: number, ev: Kevent): void {
  for (let i = 0; i < l.size; i++) view.setUint8(base + i, 0);
  writeUnsigned(view, base, l.ident, ev.ident);
  view.setInt16(base + l.filter.offset, ev.filter, true);
  view.setUint16(base + l.flags.offset, ev.flags, true);
  view.setUint32(base + l.fflags.offset, ev.fflags >>> 0, true);
  view.setBigInt64(base + l.data.offset, BigInt(ev.data), true);
  writeUnsigned(view, base, l.udata, ev.udata);
}

/** Reads one struct kevent at `base`. */
export function decodeKevent(l: KeventLayout, view: DataView, base: number): Kevent {
  return {
    ident: readUnsigned(view, base, l.ident),
    filter: view.getInt16(base + l.filter.offset, true),
    flags: view.getUint16(base + l.flags.offset, true),
    fflags: view.getUint32(base + l.fflags.offset, true),
    data: Number(view.getBigInt64(base + l.data.offset, true)),
    udata: readUnsigned(view, base, l.udata),
  };
}

/** Readiness mask for one received kevent (EV_ERROR and EV_EOF on a write filter count as failure). */
export function maskForKevent(ev: Kevent, k: Abi["constants"] = K): number {
  if (ev.flags & k.EV_ERROR) return READABLE | WRITABLE | FAILED;
  // EV_EOF on a read filter is still "readable" (recv returns 0 or the pending error).
  if (ev.filter === k.EVFILT_READ) return READABLE;
  if (ev.filter === k.EVFILT_WRITE) return ev.flags & k.EV_EOF ? WRITABLE | FAILED : WRITABLE;
  return 0;
}

function keventLayout(): KeventLayout {
  const l = abi.kevent;
  if (!l) throw new Error(`unix-ancillary: no struct kevent layout for ${abi.name}`);
  return l;
}

/** kevent() with a changelist only; returns 0 or errno (EINTR retried). */
function submit(kq: number, changes: Uint8Array, n: number): number {
  for (;;) {
    const r = libc.kevent!(kq, changes, n, null, 0, null);
    if (r >= 0) return 0;
    const e = errno();
    if (e !== abi.errno.EINTR) return e;
  }
}

export function createKqueueBackend(): Backend {
  const l = keventLayout();
  if (l.flags.offset !== l.filter.offset + 2) throw new Error(`unix-ancillary: struct kevent of ${abi.name} does not keep flags right after filter`);
  const kq0 = libc.kqueue!();
  if (kq0 < 0) throw new SystemError("kqueue", errno());
  const kq = anchorableFd(kq0);
  try {
    setCloexec(kq);
  } catch (e) {
    libc.close(kq);
    throw e;
  }
  const buf = new Uint8Array(l.size * 2);
  const view = new DataView(buf.buffer);
  const ev = (ident: number, filter: number, flags: number, fflags: number, udata: number): Kevent => ({ ident, filter, flags, fflags, data: 0, udata });

  encodeKevent(l, view, 0, ev(0, K.EVFILT_USER, K.EV_ADD | K.EV_CLEAR, 0, WAKE_TOKEN));
  const e0 = submit(kq, buf, 1);
  if (e0 !== 0) {
    libc.close(kq);
    throw new SystemError("kevent", e0);
  }
  try {
    anchorToThread([kq]);
  } catch (e) {
    libc.close(kq);
    throw e;
  }

  return {
    name: "kqueue",
    pollFd: kq,
    wakeFd: -1,
    workerData: (maxEvents) => ({
      backend: "kqueue",
      pollFd: kq,
      maxEvents,
      libName: abi.libName,
      errnoSymbol: abi.errnoSymbol,
      EINTR: abi.errno.EINTR,
      recordSize: l.size,
      tokenOffset: l.udata.offset,
      // filter (i16) and flags (u16) are adjacent in every struct kevent: one u32 carries both.
      statusOffset: l.filter.offset,
    }),
    maskFor: (status) => maskForKevent({ ident: 0, filter: (status << 16) >> 16, flags: status >>> 16, fflags: 0, data: 0, udata: 0 }),
    arm(fd, token, mask) {
      // EV_ADD on an existing knote updates it, so there is no ADD/MOD distinction here. A filter not
      // in `mask` may stay armed from before; its one stray report is ignored by the reactor.
      let n = 0;
      if (mask & READABLE) encodeKevent(l, view, l.size * n++, ev(fd, K.EVFILT_READ, K.EV_ADD | K.EV_ONESHOT, 0, token));
      if (mask & WRITABLE) encodeKevent(l, view, l.size * n++, ev(fd, K.EVFILT_WRITE, K.EV_ADD | K.EV_ONESHOT, 0, token));
      const e = submit(kq, buf, n);
      if (e !== 0) throw new SystemError("kevent", e);
    },
    remove(fd) {
      for (const filter of [K.EVFILT_READ, K.EVFILT_WRITE]) {
        encodeKevent(l, view, 0, ev(fd, filter, K.EV_DELETE, 0, 0));
        const e = submit(kq, buf, 1);
        if (e !== 0 && e !== abi.errno.ENOENT && e !== abi.errno.EBADF) throw new SystemError("kevent", e);
      }
    },
    wake() {
      encodeKevent(l, view, 0, ev(0, K.EVFILT_USER, 0, K.NOTE_TRIGGER, WAKE_TOKEN));
      submit(kq, buf, 1);
    },
    clearWake() {
      // EV_CLEAR: the EVFILT_USER knote resets itself once reported.
    },
  };
}
