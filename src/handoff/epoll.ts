/**
 * Linux only: make an fd that an epoll instance of Bun's event loop watches refer to another socket,
 * keeping the registration (docs/design.md, "Adopting sockets in Bun servers").
 *
 *   1. find the epoll fds of this process (/proc/self/fd links to "anon_inode:[eventpoll]"),
 *   2. read /proc/self/fdinfo/<epfd>: "tfd: K events: <hex> data: <hex>" gives the registration of K,
 *   3. dup3(received, K, O_CLOEXEC) replaces K (which drops the registration: the old file is gone),
 *   4. epoll_ctl(epfd, EPOLL_CTL_ADD, K, { events, data }) restores it with the same mask and data.
 *
 * This relies on an internal detail of Bun (uSockets: level-triggered epoll, the data pointer names
 * the listen socket), so callers must verify the result (see bun-serve.ts) and fall back.
 *
 * Ownership: nothing here closes the received fd; dup3 makes K a second fd for the same socket (owned
 * by Bun.serve from then on), and the caller closes its own copy once the adoption is confirmed.
 */
import { ptr } from "bun:ffi";
import { nodeFs } from "../node-fs.ts";
import { abi, K } from "../platform/index.ts";
import { libc } from "../platform/libc.ts";
import { SystemError } from "../errors.ts";
import { retry, retryEintr } from "../sys.ts";

export interface EpollRegistration {
  epfd: number;
  tfd: number;
  events: number;
  data: bigint;
}

/** Epoll instances of this process that register `tfd`. */
export function findEpollRegistrations(tfd: number): EpollRegistration[] {
  const out: EpollRegistration[] = [];
  let names: string[];
  try {
    names = nodeFs().readdirSync("/proc/self/fd");
  } catch {
    return out;
  }
  for (const name of names) {
    const epfd = Number(name);
    let target: string;
    try {
      target = nodeFs().readlinkSync(`/proc/self/fd/${epfd}`);
    } catch {
      continue;
    }
    if (target !== "anon_inode:[eventpoll]") continue;
    let info: string;
    try {
      info = nodeFs().readFileSync(`/proc/self/fdinfo/${epfd}`, "latin1");
    } catch {
      continue;
    }
    for (const line of info.split("\n")) {
      const m = /^tfd:\s*(\d+)\s+events:\s*([0-9a-fA-F]+)\s+data:\s*([0-9a-fA-F]+)/.exec(line);
      if (m && Number(m[1]) === tfd) out.push({ epfd, tfd, events: parseInt(m[2]!, 16), data: BigInt("0x" + m[3]!) });
    }
  }
  return out;
}

export function epollSupported(): boolean {
  return abi.os === "linux" && abi.epollEvent !== null && typeof libc.epoll_ctl === "function" && typeof libc.dup3 === "function";
}

function epollAdd(reg: EpollRegistration): void {
  const layout = abi.epollEvent!;
  const buf = new Uint8Array(layout.size);
  const view = new DataView(buf.buffer);
  view.setUint32(layout.events.offset, reg.events >>> 0, true);
  view.setBigUint64(layout.data.offset, reg.data, true);
  retry("epoll_ctl", () => libc.epoll_ctl(reg.epfd, K.EPOLL_CTL_ADD, reg.tfd, ptr(buf)));
}

/**
 * Replaces fd `target` with a duplicate of `source` and restores `reg` on it. Synchronous: Bun's
 * event loop runs on this thread, so nothing polls between the dup3 and the epoll_ctl.
 */
export function replaceRegisteredFd(source: number, target: number, reg: EpollRegistration): void {
  retry("dup3", () => libc.dup3(source, target, K.O_CLOEXEC));
  epollAdd({ ...reg, tfd: target });
}

/** Removes `reg` from its epoll set. ENOENT (already gone) is not an error: returns false then. */
export function epollDel(reg: EpollRegistration): boolean {
  const layout = abi.epollEvent!;
  const buf = new Uint8Array(layout.size); // Linux < 2.6.9 wanted a non-null event even for DEL
  const r = retryEintr(() => libc.epoll_ctl(reg.epfd, K.EPOLL_CTL_DEL, reg.tfd, ptr(buf)));
  if (r >= 0) return true;
  if (-r === abi.errno.ENOENT || -r === abi.errno.EBADF) return false;
  throw new SystemError("epoll_ctl", -r);
}

/** Adds `reg` back (same events and data). */
export function epollReAdd(reg: EpollRegistration): void {
  epollAdd(reg);
}
