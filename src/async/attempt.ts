/**
 * The async operations' non-blocking attempts and the yields between them: an attempt returns its
 * result or AGAIN; untilReady-style loops retry after the microtasks, after an event-loop turn, then
 * after reactor readiness (src/socket/base.ts). Also the one abortable sleep.
 *
 * Holds no fds.
 */
import { abi } from "../platform/index.ts";
import { SystemError } from "../errors.ts";
import { WOULD_BLOCK } from "../msg-io.ts";
import { abortError } from "./queue.ts";
import { addAbortListener, removeAbortListener } from "../intrinsics.ts";

const EAGAIN = abi.errno.EAGAIN;
export function isWouldBlock(e: unknown): boolean {
  return e instanceof SystemError && e.errno === EAGAIN; // EWOULDBLOCK == EAGAIN on every supported ABI
}

/** Resolves after the event loop has run once more (timers, I/O callbacks, other tasks). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Resolves after the microtasks queued so far have run. */
export function afterMicrotasks(): Promise<void> {
  return Promise.resolve();
}

export const YIELDS: readonly (() => Promise<void>)[] = [afterMicrotasks, nextTurn];

/** An async operation's non-blocking attempt: its result, or AGAIN when the socket is not ready. */
export const AGAIN: unique symbol = Symbol("unix-ancillary.again");
export type Attempt<T> = (fd: number) => T | typeof AGAIN;

/** A send count from a MSG_DONTWAIT engine call, with WOULD_BLOCK mapped to AGAIN. */
export function orAgain(n: number): number | typeof AGAIN {
  return n === WOULD_BLOCK ? AGAIN : n;
}

/** Runs one attempt; an EAGAIN that still arrives as an exception (not from the engine) counts as AGAIN. */
export function attemptOnce<T>(attempt: Attempt<T>, fd: number): T | typeof AGAIN {
  try {
    return attempt(fd);
  } catch (e) {
    if (isWouldBlock(e)) return AGAIN;
    throw e;
  }
}

/**
 * The library's one sleep: resolves after `ms`, rejects with ERR_UA_ABORTED as soon as `signal` aborts.
 * `ref: false` lets the process exit while it waits (handoff polling).
 */
export function sleep(ms: number, signal?: AbortSignal, ref = true): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortError(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError(signal!));
    };
    const t = setTimeout(() => {
      if (signal) removeAbortListener(signal, onAbort);
      resolve();
    }, ms);
    if (!ref) (t as unknown as { unref?: () => void }).unref?.();
    if (signal) addAbortListener(signal, onAbort);
  });
}
