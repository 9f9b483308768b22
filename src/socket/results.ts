/**
 * What the receives return: the received fds (the caller's OwnedFds) with the payload or its length.
 *
 * Ownership contract: a result holds its fds for the caller; dispose closes every one still open.
 */
import { closeAll, type OwnedFd } from "../owned-fd.ts";

/** Result of the allocating receives: the payload and the fds, disposable as a unit. */
export class ReceivedFds implements Disposable {
  // `declare`: plain constructor stores, no class-field initializer on the receive hot path.
  /** Payload bytes actually received. */
  declare readonly data: Uint8Array;
  /** The received fds, owned by the caller. */
  declare readonly fds: OwnedFd[];
  constructor(data: Uint8Array, fds: OwnedFd[]) {
    this.data = data;
    this.fds = fds;
  }
  /** Closes every fd still held in `fds` (fds the caller closed or released are skipped). */
  [Symbol.dispose](): void {
    closeAll(this.fds);
  }
}

/** Result of the bring-your-own-buffer receives: bytes written into the caller's buffer(s) and the fds. */
export class ReceivedInto implements Disposable {
  declare readonly bytesRead: number;
  declare readonly fds: OwnedFd[];
  constructor(bytesRead: number, fds: OwnedFd[]) {
    this.bytesRead = bytesRead;
    this.fds = fds;
  }
  [Symbol.dispose](): void {
    closeAll(this.fds);
  }
}
