// TEMPORARY stub so the socket classes load while the epoll reactor is being written (helper owns this file;
// overwrite freely). Polls readiness with poll(2, timeout 0) on a 1 ms timer.
import { K } from "../platform/index.ts";
import { pollOne } from "../sys.ts";
import { UnixAncillaryError } from "../errors.ts";
export type Interest = "readable" | "writable";
const waiters = new Map<number, Set<(e?: unknown) => void>>();
export function waitFor(fd: number, interest: Interest, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new UnixAncillaryError("ERR_UA_ABORTED", "the operation was aborted", { cause: signal.reason }));
    const set = waiters.get(fd) ?? new Set();
    waiters.set(fd, set);
    const done = (e?: unknown) => { clearInterval(t); set.delete(done); signal?.removeEventListener("abort", onAbort); e ? reject(e) : resolve(); };
    const onAbort = () => done(new UnixAncillaryError("ERR_UA_ABORTED", "the operation was aborted", { cause: signal!.reason }));
    signal?.addEventListener("abort", onAbort, { once: true });
    set.add(done);
    const t = setInterval(() => { if (pollOne(fd, interest === "readable" ? K.POLLIN : K.POLLOUT, 0) !== 0) done(); }, 1);
  });
}
export function forget(fd: number): void {
  const set = waiters.get(fd);
  if (!set) return;
  waiters.delete(fd);
  for (const d of [...set]) d(new UnixAncillaryError("ERR_UA_CLOSED", "the socket was closed while an operation was waiting"));
}
