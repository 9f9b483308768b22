/**
 * A FIFO of operations on one socket direction: operations run one at a time, in call order, so
 * concurrent receives complete in call order and concurrent sends never interleave one message's bytes
 * with another's fds. An idle queue runs the operation at once, synchronously up to its first await,
 * which is how every async operation tries its non-blocking syscall before touching the reactor.
 * No fds are held here.
 */
import { UnixAncillaryError } from "../errors.ts";
import { addAbortListener, removeAbortListener } from "../intrinsics.ts";

export function abortError(signal: AbortSignal): UnixAncillaryError {
  return new UnixAncillaryError("ERR_UA_ABORTED", "the operation was aborted", { cause: signal.reason });
}

export class OpQueue {
  #busy = false;
  readonly #waiting: Array<{ go: () => void; fail: (e: unknown) => void }> = [];

  /** Number of operations running or waiting. */
  get size(): number {
    return (this.#busy ? 1 : 0) + this.#waiting.length;
  }

  async run<T>(signal: AbortSignal | undefined, op: () => T | Promise<T>): Promise<T> {
    if (signal?.aborted) throw abortError(signal);
    if (this.#busy) await this.#turn(signal);
    else this.#busy = true;
    try {
      return await op();
    } finally {
      this.#release();
    }
  }

  #turn(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const entry = {
        go: () => {
          if (signal) removeAbortListener(signal, onAbort);
          resolve();
        },
        fail: (e: unknown) => {
          if (signal) removeAbortListener(signal, onAbort);
          reject(e);
        },
      };
      const onAbort = () => {
        const i = this.#waiting.indexOf(entry);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(abortError(signal!));
      };
      if (signal) addAbortListener(signal, onAbort);
      this.#waiting.push(entry);
    });
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next) next.go();
    else this.#busy = false;
  }
}
