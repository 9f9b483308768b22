/**
 * The reactor Worker: blocks in epoll_wait(-1) (kevent() on darwin/FreeBSD) and reports readiness to
 * the main thread as flat batches [token, mask, token, mask, ...]. It never reads a socket, never
 * creates, owns or closes an fd: the poll fd and wake fd belong to the main thread (src/async/reactor.ts),
 * which also does every epoll_ctl/kevent change.
 *
 * Notification is postMessage: measured here against Atomics.notify -> main-thread Atomics.waitAsync
 * on a SharedArrayBuffer ring, postMessage had the lower median (11-18 us vs 19-24 us sendmsg -> wait
 * resolved, 1000 iterations x 5 runs, equal p99 within noise) and needs no shared ring or ack protocol.
 * No `onmessage` handler is ever installed, so once the loop returns (the wake source fired: shutdown)
 * the Worker's event loop is empty and the thread ends by itself (docs/design.md, "The reactor": a Worker that keeps
 * an onmessage handler would keep the process alive forever).
 */
import { workerData } from "node:worker_threads";
import { createEpollPoller, type Poller } from "./backend-epoll.ts";
import { createKqueuePoller } from "./backend-kqueue.ts";

export interface ReactorWorkerData {
  backend: "epoll" | "kqueue";
  pollFd: number;
  maxEvents: number;
}

/** Messages from the Worker. A batch is a plain number[]; anything else is one of these. */
export type ReactorWorkerMessage = number[] | { type: "stopped" } | { type: "error"; syscall: string; errno: number; message: string };

const data = workerData as ReactorWorkerData;
const poller: Poller = data.backend === "epoll" ? createEpollPoller(data.pollFd, data.maxEvents) : createKqueuePoller(data.pollFd, data.maxEvents);

function runPost(): void {
  for (;;) {
    const out: number[] = [];
    const more = poller.wait(out);
    if (out.length > 0) postMessage(out);
    if (!more) return;
  }
}

try {
  runPost();
  postMessage({ type: "stopped" } satisfies ReactorWorkerMessage);
} catch (e) {
  const err = e as { syscall?: string; errno?: number; message?: string };
  postMessage({ type: "error", syscall: err.syscall ?? "", errno: err.errno ?? 0, message: String(err.message ?? e) } satisfies ReactorWorkerMessage);
}
