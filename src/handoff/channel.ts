/**
 * A framed, non-blocking handoff channel over one connected SOCK_SEQPACKET socket.
 *
 * Ownership: the channel owns its socket. `recv` returns the frame and the fds that came with it as
 * OwnedFds; on every error path (bad frame, wrong count, truncation, timeout) every fd of that
 * message is closed before the error propagates.
 */
import { UnixSeqpacket } from "../socket.ts";
import { OwnedFd, closeAll, type FdLike } from "../owned-fd.ts";
import { pollOne, setNonblocking } from "../sys.ts";
import { K } from "../platform/index.ts";
import { UnixAncillaryError, SystemError } from "../errors.ts";
import { decodeFrame, encodeFrame, FrameType, MAX_FDS, MAX_FRAME, protocolError, TYPE_NAMES, type Frame } from "./protocol.ts";
import { forgetFd, waitReadable } from "./wait.ts";

export interface ReceivedFrame extends Frame {
  fds: OwnedFd[];
}

export class PeerClosedError extends UnixAncillaryError {
  constructor(detail: string) {
    super("ERR_UA_PROTOCOL", `handoff protocol: the peer closed the connection ${detail}`);
  }
}

export class Channel implements Disposable {
  readonly sock: UnixSeqpacket;

  constructor(sock: UnixSeqpacket) {
    this.sock = sock;
    setNonblocking(sock.fd, true);
  }

  get closed(): boolean {
    return this.sock.closed;
  }

  send(type: FrameType, payload: object, fds: readonly FdLike[] = []): void {
    if (fds.length > MAX_FDS) throw protocolError(`${fds.length} fds in one frame; the limit is ${MAX_FDS}`);
    const frame = encodeFrame(type, payload, fds.length);
    try {
      this.sock.sendFdsSync(frame, fds);
    } catch (e) {
      if (e instanceof SystemError && (e.code === "EPIPE" || e.code === "ECONNRESET" || e.code === "ENOTCONN")) {
        throw new PeerClosedError(`before the ${TYPE_NAMES[type]} frame could be sent`);
      }
      throw e;
    }
  }

  /** Best effort abort: never throws. */
  sendAbort(code: string, message: string): void {
    if (this.closed) return;
    try {
      this.send(FrameType.Abort, { code, message: message.slice(0, 4096) });
    } catch {
      // the peer is gone
    }
  }

  /**
   * Waits for one frame until `deadline` (performance.now() ms). Only a frame of type `fdsFor` may carry
   * fds; any other frame that does is a protocol error, and its fds are closed before it is thrown.
   */
  async recv(deadline: number, what: string, signal?: AbortSignal, fdsFor: FrameType | null = null): Promise<ReceivedFrame> {
    for (;;) {
      await waitReadable(this.sock.fd, { deadline, what, signal });
      let got;
      try {
        got = this.sock.recvFdsSync(MAX_FDS, { bufferSize: MAX_FRAME });
      } catch (e) {
        if (e instanceof SystemError && e.code === "EAGAIN") continue;
        if (e instanceof SystemError && (e.code === "ECONNRESET" || e.code === "ENOTCONN")) throw new PeerClosedError(`while waiting for ${what}`);
        if (e instanceof UnixAncillaryError && (e.code === "ERR_UA_DATAGRAM_TRUNCATED" || e.code === "ERR_UA_ANCILLARY_TRUNCATED")) {
          throw protocolError(`frame exceeds the limits (${MAX_FRAME} bytes, ${MAX_FDS} fds); its fds were closed (${e.message})`);
        }
        throw e;
      }
      if (got.data.byteLength === 0 && got.fds.length === 0) throw new PeerClosedError(`while waiting for ${what}`);
      try {
        const frame = decodeFrame(got.data, got.fds.length);
        if (got.fds.length > 0 && frame.type !== fdsFor) throw protocolError(`the ${TYPE_NAMES[frame.type] ?? frame.type} frame must not carry fds (it had ${got.fds.length}; they were closed)`);
        return { ...frame, fds: got.fds };
      } catch (e) {
        closeAll(got.fds);
        throw e;
      }
    }
  }

  /** Closes the socket so that the peer still reads every frame we sent (closeDrained). */
  close(): void {
    if (this.sock.closed) return;
    forgetFd(this.sock.fd);
    closeDrained(this.sock, MAX_FDS, MAX_FRAME);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Closes a connected control socket so that the peer reads every message we sent, then EOF. Closing a
 * Unix socket with unread data makes the peer's next receive fail with ECONNRESET *before* what we
 * sent last (a refused upgrader would lose our abort). So: shutdown(SHUT_RD) first — from then on the
 * peer's sends fail with EPIPE and nothing new can be queued — then read what is queued (closing its
 * fds), then close (docs/design.md, "Limits and truncation"). Bounded: at most 64 queued messages.
 */
export function closeDrained(sock: UnixSeqpacket, maxFds: number, bufferSize: number): void {
  if (sock.closed) return;
  try {
    sock.shutdown("read");
  } catch {
    // not connected (the peer is gone): nothing more can arrive
  }
  readQueued(sock, maxFds, bufferSize); // after the shutdown an empty queue reads as EOF, which ends it
  sock.close();
}

/**
 * Reads the messages already queued on a non-blocking seqpacket socket, without waiting: each one's
 * fds are closed and its bytes handed to `each` (if given). Stops at an empty queue, EOF or a system
 * error, after at most 64 messages. A message the library refuses (oversized, truncated control data)
 * was consumed with its fds closed: reading goes on with the next.
 */
export function readQueued(sock: UnixSeqpacket, maxFds: number, bufferSize: number, each?: (data: Uint8Array) => void): void {
  for (let i = 0; i < 64 && !sock.closed; i++) {
    let got;
    try {
      if (pollOne(sock.fd, K.POLLIN, 0) === 0) return;
      got = sock.recvFdsSync(maxFds, { bufferSize });
    } catch (e) {
      if (e instanceof UnixAncillaryError) continue;
      return;
    }
    closeAll(got.fds);
    if (got.data.byteLength === 0) return;
    each?.(got.data);
  }
}
