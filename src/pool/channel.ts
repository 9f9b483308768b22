/**
 * The private control channel between the supervisor and one worker: one connected SOCK_SEQPACKET
 * socketpair, one JSON message per packet. Only the supervisor's first message (hello) carries fds
 * (the listening sockets); any fd on any other message is closed on arrival.
 *
 * Ownership: the channel owns its socket and closes it once (close()). recv() hands the fds of a
 * hello to the caller as OwnedFds; on every other path (bad JSON, unexpected fds, truncation) the
 * message's fds are closed before recv() returns or throws. Fds passed to send() stay the caller's.
 */
import { UnixSeqpacket } from "../socket.ts";
import { closeAll, type FdLike, type OwnedFd } from "../owned-fd.ts";
import { UnixAncillaryError, SystemError } from "../errors.ts";
import { setNonblocking } from "../sys.ts";
import { forgetFd, waitReadable } from "../handoff/wait.ts";
import { closeDrained, readQueued } from "../handoff/channel.ts";

/** Largest control message (a status reply of many workers fits easily). */
export const MAX_MESSAGE = 64 * 1024;
/** Most fds one message may carry (listening sockets of a pool). */
export const MAX_CHANNEL_FDS = 64;

export type Message = { t: string; [k: string]: unknown };

export class PoolChannel implements Disposable {
  readonly sock: UnixSeqpacket;
  readonly #idleMs: number;
  readonly #ref: boolean;

  /** `idleMs`: longest sleep of the readiness poll while nothing arrives; `ref`: keep the process alive while waiting. */
  constructor(sock: UnixSeqpacket, opts: { idleMs?: number; ref?: boolean } = {}) {
    this.sock = sock;
    this.#idleMs = opts.idleMs ?? 20;
    this.#ref = opts.ref ?? true;
    setNonblocking(sock.fd, true);
  }

  get closed(): boolean {
    return this.sock.closed;
  }

  /** Sends one message; returns false if the peer is gone (never throws for that). */
  send(msg: Message, fds: readonly FdLike[] = []): boolean {
    if (this.sock.closed) return false;
    const bytes = JSON.stringify(msg);
    if (bytes.length > MAX_MESSAGE) throw new UnixAncillaryError("ERR_UA_PROTOCOL", `pool channel: message of ${bytes.length} bytes exceeds ${MAX_MESSAGE}`);
    try {
      this.sock.sendFdsSync(bytes, fds);
      return true;
    } catch (e) {
      if (e instanceof SystemError && (e.code === "EPIPE" || e.code === "ECONNRESET" || e.code === "ENOTCONN" || e.code === "EAGAIN")) return false;
      throw e;
    }
  }

  /**
   * The next message, or null when the peer closed the channel. `acceptFds`: whether this message may
   * carry fds (only the hello). Rejects with ERR_UA_TIMEOUT at `deadline` (performance.now() ms).
   */
  async recv(opts: { deadline?: number; acceptFds?: boolean; signal?: AbortSignal } = {}): Promise<{ msg: Message; fds: OwnedFd[] } | null> {
    for (;;) {
      if (this.sock.closed) return null;
      await waitReadable(this.sock.fd, { deadline: opts.deadline ?? Infinity, what: "pool channel receive", idleMs: this.#idleMs, ref: this.#ref, signal: opts.signal });
      if (this.sock.closed) return null;
      let got;
      try {
        got = this.sock.recvFdsSync(MAX_CHANNEL_FDS, { bufferSize: MAX_MESSAGE });
      } catch (e) {
        if (e instanceof SystemError && e.code === "EAGAIN") continue;
        if (e instanceof SystemError && (e.code === "ECONNRESET" || e.code === "ENOTCONN")) return null;
        throw e;
      }
      if (got.data.byteLength === 0 && got.fds.length === 0) return null;
      try {
        if (got.fds.length > 0 && !opts.acceptFds) throw new UnixAncillaryError("ERR_UA_PROTOCOL", `pool channel: unexpected ${got.fds.length} fds (closed)`);
        return { msg: decodeMessage(got.data), fds: got.fds };
      } catch (e) {
        closeAll(got.fds);
        throw e;
      }
    }
  }

  /**
   * The well-formed messages already queued, without waiting (fds on them are closed): what a peer
   * sent right before it exited, which its exit can otherwise overtake. Stops at EOF or an empty queue.
   */
  takeQueued(): Message[] {
    const out: Message[] = [];
    readQueued(this.sock, MAX_CHANNEL_FDS, MAX_MESSAGE, (data) => {
      try {
        out.push(decodeMessage(data));
      } catch {
        // malformed: skipped
      }
    });
    return out;
  }

  /** Closes the channel; the peer still reads every message sent before (closeDrained). */
  close(): void {
    if (this.sock.closed) return;
    forgetFd(this.sock.fd);
    closeDrained(this.sock, MAX_CHANNEL_FDS, MAX_MESSAGE);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** One message's JSON. @throws UnixAncillaryError ERR_UA_PROTOCOL if it is not JSON or has no string `t`. */
function decodeMessage(data: Uint8Array): Message {
  let msg: Message;
  try {
    msg = JSON.parse(new TextDecoder().decode(data)) as Message;
  } catch (e) {
    throw new UnixAncillaryError("ERR_UA_PROTOCOL", `pool channel: malformed message (${(e as Error).message})`);
  }
  if (msg === null || typeof msg !== "object" || typeof msg.t !== "string") throw new UnixAncillaryError("ERR_UA_PROTOCOL", "pool channel: malformed message");
  return msg;
}
