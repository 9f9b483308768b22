/**
 * Readiness waits for the handoff's control sockets, without ever blocking the event loop.
 *
 * Default: a non-blocking poll(2) loop with timers (1 ms steps while a handshake is active, backing
 * off to `idleMs` while idle). The handoff is rare and short, so this costs ~nothing and keeps no
 * Worker around. With UA_HANDOFF_REACTOR=1 the library's reactor (src/async/reactor.ts: a Worker in
 * epoll_wait that only reports readiness) is used instead. It stays opt-in: under bun test, in
 * test/handoff-protocol.test.ts, a report the Worker had posted reached the main thread only ~30 s
 * later (the same flow works as a plain script and as an isolated test; cause not found).
 */
import { K } from "../platform/index.ts";
import * as sys from "../sys.ts";
import { UnixAncillaryError } from "../errors.ts";
import { abortError } from "../async/queue.ts";
import { sleep } from "../async/attempt.ts";

type ReactorModule = {
  waitFor(fd: number, interest: "readable" | "writable", signal?: AbortSignal): Promise<void>;
  forget(fd: number): void;
};

let reactor: ReactorModule | null | undefined;
async function loadReactor(): Promise<ReactorModule | null> {
  if (reactor !== undefined) return reactor;
  if (process.env.UA_HANDOFF_REACTOR !== "1") return (reactor = null);
  try {
    const m = (await import("../async/reactor.ts")) as Partial<ReactorModule>;
    reactor = typeof m.waitFor === "function" && typeof m.forget === "function" ? (m as ReactorModule) : null;
  } catch {
    reactor = null;
  }
  return reactor;
}

/** Tells the reactor (if loaded) that `fd` is about to be closed. */
export function forgetFd(fd: number): void {
  try {
    reactor?.forget(fd);
  } catch {
    // not registered
  }
}

export function timeoutError(what: string, ms: number): UnixAncillaryError {
  return new UnixAncillaryError("ERR_UA_TIMEOUT", `${what} timed out after ${ms} ms`);
}

export interface WaitOptions {
  /** Absolute deadline (performance.now() ms); Infinity for none. */
  deadline?: number;
  /** What timed out, for the error message. */
  what?: string;
  signal?: AbortSignal;
  /** Poll fallback: longest sleep between checks (default 1 ms: handshake speed). */
  idleMs?: number;
  /** Poll fallback: keep the process alive while waiting (default true). */
  ref?: boolean;
}


/**
 * Resolves when `fd` is readable (or has an error/hangup pending: the next receive reports it).
 * Rejects with ERR_UA_TIMEOUT at the deadline, ERR_UA_ABORTED on the signal.
 */
export async function waitReadable(fd: number, opts: WaitOptions = {}): Promise<void> {
  const deadline = opts.deadline ?? Infinity;
  const what = opts.what ?? "wait";
  const started = performance.now();
  if (opts.signal?.aborted) throw abortError(opts.signal);
  if (sys.pollOne(fd, K.POLLIN, 0) !== 0) return;
  const r = opts.ref === false ? null : await loadReactor();
  if (r) {
    const timeoutMs = deadline - performance.now();
    if (timeoutMs <= 0) throw timeoutError(what, Math.round(deadline - started));
    const signals: AbortSignal[] = [];
    if (opts.signal) signals.push(opts.signal);
    let timer: AbortController | null = null;
    let handle: ReturnType<typeof setTimeout> | null = null;
    if (Number.isFinite(timeoutMs)) {
      timer = new AbortController();
      handle = setTimeout(() => timer!.abort(), Math.max(1, Math.ceil(timeoutMs)));
      signals.push(timer.signal);
    }
    try {
      await r.waitFor(fd, "readable", signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals));
      return;
    } catch (e) {
      if (opts.signal?.aborted) throw abortError(opts.signal);
      if (timer?.signal.aborted) throw timeoutError(what, Math.round(performance.now() - started));
      throw e;
    } finally {
      if (handle) clearTimeout(handle);
    }
  }
  const maxSleep = opts.idleMs ?? 1;
  let step = 1;
  for (;;) {
    if (opts.signal?.aborted) throw abortError(opts.signal);
    const left = deadline - performance.now();
    if (left <= 0) throw timeoutError(what, Math.round(performance.now() - started));
    await sleep(Math.min(step, left), undefined, opts.ref !== false);
    if (sys.pollOne(fd, K.POLLIN, 0) !== 0) return;
    step = Math.min(maxSleep, step * 2);
  }
}
