/**
 * ScmRights: a draining iterator over the fds of one received fd-carrying control message.
 *
 * Ownership contract: the iterator owns every fd it has not yielded yet. Each OwnedFd is yielded once
 * and is the caller's from then on; return() (a `break` out of for..of), dispose and closeRemaining()
 * close the rest. No FFI here: closing goes through the OwnedFd objects themselves.
 */
import type { OwnedFd } from "../owned-fd.ts";

/** Something that holds received fds not yet handed out; closing it closes them. */
export interface Drainable {
  closeRemaining(): void;
}

/** Iterator over the fds of one SCM_RIGHTS message. Each OwnedFd is yielded once; return()/dispose closes the rest. */
export class ScmRights implements IterableIterator<OwnedFd>, Disposable, Drainable {
  #fds: OwnedFd[];
  #next = 0;
  /** @internal */
  constructor(fds: OwnedFd[]) {
    this.#fds = fds;
  }
  /** How many fds are left to yield (the crate's exact size_hint). */
  get remaining(): number {
    return this.#fds.length - this.#next;
  }
  next(): IteratorResult<OwnedFd, undefined> {
    if (this.#next < this.#fds.length) {
      const fd = this.#fds[this.#next]!;
      this.#fds[this.#next++] = undefined as unknown as OwnedFd;
      return { value: fd, done: false };
    }
    return { value: undefined, done: true };
  }
  /** Called by `break` in for..of: closes every fd not yet yielded. */
  return(): IteratorResult<OwnedFd, undefined> {
    this.closeRemaining();
    return { value: undefined, done: true };
  }
  closeRemaining(): void {
    while (this.#next < this.#fds.length) {
      const fd = this.#fds[this.#next];
      this.#fds[this.#next++] = undefined as unknown as OwnedFd;
      fd?.close();
    }
  }
  [Symbol.iterator](): this {
    return this;
  }
  [Symbol.dispose](): void {
    this.closeRemaining();
  }
}
