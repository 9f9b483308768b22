/**
 * UnixStream: a connected AF_UNIX SOCK_STREAM socket, plus the send-all methods only streams have.
 *
 * Ownership contract: as UnixSocket (base.ts).
 */
import { K } from "../platform/index.ts";
import { closeAll, type OwnedFd, type FdLike } from "../owned-fd.ts";
import { engine, Kind } from "../msg-io.ts";
import * as sys from "../sys.ts";
import { MESSAGES, UnixAncillaryError } from "../errors.ts";
import { viewByteLength } from "../intrinsics.ts";
import { AGAIN, attemptOnce, orAgain } from "../async/attempt.ts";
import { checkFdList, holdFds, resolveFdList, signalOf, toBytes, type AsyncOptions, type Payload } from "./coerce.ts";
import { checkSocketType, connectAsync, ownedPair, socketWith } from "./create.ts";
import { UnixSocket } from "./base.ts";

/**
 * A connected SOCK_STREAM Unix socket that sends and receives fds (SCM_RIGHTS) with its data. It owns
 * its fd; fds you send stay yours, fds you receive are OwnedFds. Create with pair(), connect(),
 * a listener's accept(), or fromFd(). A stream send of fds needs at least one data byte.
 * @throws SystemError from the syscalls; UnixAncillaryError (ERR_UA_*) as the README's table says
 */
export class UnixStream extends UnixSocket {
  protected readonly kind = Kind.Stream;
  protected readonly label = "UnixStream";

  protected constructor(owned: OwnedFd) {
    super(owned);
  }

  /** A connected pair (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC)). */
  static pair(): [UnixStream, UnixStream] {
    const [a, b] = ownedPair(K.SOCK_STREAM);
    return [new UnixStream(a), new UnixStream(b)];
  }

  /** Takes ownership of an OwnedFd holding a connected AF_UNIX stream socket. */
  static fromFd(fd: OwnedFd): UnixStream {
    checkSocketType(fd, "stream", "UnixStream");
    return new UnixStream(fd);
  }

  /** Connects to a listening socket at `path` ("\0name" for Linux's abstract namespace). Blocks. */
  static connectSync(path: string): UnixStream {
    return new UnixStream(socketWith(K.SOCK_STREAM, (fd) => sys.connect(fd, path)));
  }

  /** @internal */
  static _wrap(owned: OwnedFd): UnixStream {
    return new UnixStream(owned);
  }

  /** Async connectSync: never blocks the event loop, even when the listener's backlog is full. */
  static async connect(path: string, opts?: AsyncOptions): Promise<UnixStream> {
    return new UnixStream(await connectAsync(K.SOCK_STREAM, path, signalOf(opts)));
  }

  /**
   * Async sendFdsAllSync: fds go exactly once, with the first accepted bytes. If the operation is
   * aborted or fails after that first send, the fds and a prefix of the data have been delivered; the
   * error's `bytesSent` says how much. Do not retry the whole send then.
   */
  sendFdsAll(data: Payload, fds?: readonly FdLike[], opts?: AsyncOptions): Promise<void> {
    let bytes: Uint8Array, list: readonly number[], signal: AbortSignal | undefined;
    try {
      bytes = toBytes(data);
      list = resolveFdList(checkFdList(fds));
      signal = signalOf(opts);
      this.checkPayload(viewByteLength(bytes), list.length);
    } catch (e) {
      return Promise.reject(e);
    }
    // As #scheduleSend: fds resolved now; if the first sendmsg cannot go at once, it sends duplicates
    // held from call time (an idle queue runs the operation synchronously up to its first await).
    const hold: { fds: OwnedFd[] | null } = { fds: null };
    try {
      if (this.sendQueue.size > 0) hold.fds = holdFds(list);
    } catch (e) {
      return Promise.reject(e);
    }
    const done = this.sendQueue.run(signal, async () => {
      let sent = 0;
      try {
        if (list.length > 0) {
          const queued = hold.fds !== null;
          let r = queued ? AGAIN : attemptOnce(() => orAgain(engine.sendOne(this, this._ownedFd, bytes, list, K.MSG_DONTWAIT)), this.fd);
          if (r === AGAIN) {
            const held = (hold.fds ??= holdFds(list));
            r = await this.untilReady("writable", signal, () => orAgain(engine.sendOne(this, this._ownedFd, bytes, held, K.MSG_DONTWAIT)), !queued);
          }
          sent = r;
          if (hold.fds !== null) closeAll(hold.fds); // delivered: the rest is data only
          if (sent === 0) throw new UnixAncillaryError("ERR_UA_WRITE_ZERO", MESSAGES.writeZeroFirst);
        }
        while (sent < viewByteLength(bytes)) {
          const n = await this.untilReady("writable", signal, (sock) => orAgain(engine.sendRange(this._ownedFd, sock, bytes, sent, K.MSG_DONTWAIT)));
          if (n === 0) throw new UnixAncillaryError("ERR_UA_WRITE_ZERO", MESSAGES.writeZeroShort);
          sent += n;
        }
      } catch (e) {
        if (e !== null && typeof e === "object") (e as { bytesSent?: number }).bytesSent = sent;
        throw e;
      }
    });
    return list.length === 0 ? done : done.finally(() => {
      if (hold.fds !== null) closeAll(hold.fds);
    });
  }

  /**
   * Sends all of `data`, with `fds` attached exactly once to the first sendmsg; the rest follows in
   * control-less sendmsg calls (MSG_NOSIGNAL, never write(2)). On error a prefix and the fds may already
   * be delivered: do not retry the whole send.
   */
  sendFdsAllSync(data: Payload, fds?: readonly FdLike[]): void {
    const bytes = toBytes(data);
    const list = checkFdList(fds);
    void this.fd; // a closed socket fails before anything else
    this.checkPayload(viewByteLength(bytes), list.length);
    let sent = 0;
    if (list.length > 0) {
      sent = engine.sendOne(this, this._ownedFd, bytes, list, 0); // reads our fd after resolving the list
      if (sent === 0) throw new UnixAncillaryError("ERR_UA_WRITE_ZERO", MESSAGES.writeZeroFirst);
    }
    while (sent < viewByteLength(bytes)) {
      const n = engine.sendRange(this._ownedFd, this.fd, bytes, sent, 0);
      if (n === 0) throw new UnixAncillaryError("ERR_UA_WRITE_ZERO", MESSAGES.writeZeroShort);
      sent += n;
    }
  }
}
