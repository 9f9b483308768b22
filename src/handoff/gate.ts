/**
 * AcceptGate: stop (and, if a handoff fails late, resume) accepting on a listening fd that Bun's own
 * event loop watches, without closing the socket or touching its established connections.
 *
 * Bun.serve, Bun.listen, net.Server and node:http all register their listening fd in an epoll set of
 * the thread's event loop (level-triggered; the data word names uSockets' listen socket). Removing
 * that registration (EPOLL_CTL_DEL) makes the loop stop calling accept() on it; the kernel keeps
 * queueing connections, which the successor — holding the same socket — accepts. Nothing is refused.
 *
 * Pausing runs from a fresh setImmediate (pauseGates): inside a request handler or a microtask the
 * loop may still be walking an epoll_wait batch that already holds the listener's readiness, and
 * uSockets would then accept after the pause (measured: 116 late accepts from a handler, 25 from a
 * microtask, 0 from setImmediate over 50 handoffs).
 *
 * resume() re-adds the registration only if the fd still names the same socket (dev:ino from
 * /proc/self/fd), so a stopped server whose fd number was reused is never re-armed.
 *
 * Ownership: no fd is created or closed here; the gate only edits epoll registrations of fds the
 * servers own.
 */
import { socketInode } from "./sources.ts";
import { epollDel, epollReAdd, epollSupported, findEpollRegistrations, type EpollRegistration } from "./epoll.ts";

/**
 * Stops and resumes accepting on one listening fd that Bun's event loop watches, without closing it
 * (see the module comment). Owns no fd.
 */
export class AcceptGate {
  readonly fd: number;
  readonly #inode: string | null;
  #removed: EpollRegistration[] = [];

  constructor(fd: number) {
    this.fd = fd;
    this.#inode = socketInode(fd);
  }

  /** Whether the gate is closed (registrations removed and not yet restored). */
  get paused(): boolean {
    return this.#removed.length > 0;
  }

  /** Whether this platform and fd can be gated at all (Linux, a socket registered in an epoll set). */
  get supported(): boolean {
    return epollSupported() && this.#inode !== null;
  }

  /** Removes the fd from every epoll set of this process. Returns how many registrations were removed. */
  pause(): number {
    if (!this.supported || this.paused) return this.#removed.length;
    if (socketInode(this.fd) !== this.#inode) return 0;
    for (const reg of findEpollRegistrations(this.fd)) if (epollDel(reg)) this.#removed.push(reg);
    return this.#removed.length;
  }

  /** Restores the removed registrations if the fd still names the same socket. Returns whether it did. */
  resume(): boolean {
    const regs = this.#removed;
    this.#removed = [];
    if (regs.length === 0 || socketInode(this.fd) !== this.#inode) return false;
    for (const reg of regs) epollReAdd(reg);
    return true;
  }
}

/** Waits for a fresh event-loop turn (outside any epoll batch), then pauses every gate at once. */
export async function pauseGates(gates: readonly AcceptGate[]): Promise<{ paused: number; at: number }> {
  await new Promise<void>((r) => setImmediate(r));
  let paused = 0;
  for (const g of gates) paused += g.pause() > 0 ? 1 : 0;
  return { paused, at: performance.timeOrigin + performance.now() };
}

export function resumeGates(gates: readonly AcceptGate[]): void {
  for (const g of gates) {
    try {
      g.resume();
    } catch {
      // an fd that vanished meanwhile cannot be re-armed; nothing else to do
    }
  }
}
