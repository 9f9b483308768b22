/**
 * UnixListener and UnixSeqpacketListener: listening sockets and the lifecycle of their socket file.
 *
 * Ownership contract: a listener owns its OwnedFd and closes it once on close()/dispose; each accepted
 * connection is wrapped in an OwnedFd at once and handed to the caller inside a socket object. The
 * socket file a listener created is removed on close only while it is still the same file (dev:ino):
 * another listener that bound the path since keeps its file.
 */
import { K } from "../platform/index.ts";
import { adopt, type OwnedFd } from "../owned-fd.ts";
import * as sys from "../sys.ts";
import { closedError, invalidArgType, outOfRange, UnixAncillaryError } from "../errors.ts";
import { describe } from "../cmsg/sizes.ts";
import { OpQueue } from "../async/queue.ts";
import { forget, waitFor } from "../async/wait.ts";
import { isWouldBlock } from "../async/attempt.ts";
import { signalOf, type AsyncOptions } from "./coerce.ts";
import { checkSocketType, requireSeqpacket } from "./create.ts";
import { UnixStream } from "./stream.ts";
import { UnixSeqpacket } from "./seqpacket.ts";

/** Options of the listeners' bind: socket file mode (applied before listen()), backlog, unlinkOnClose. */
export interface BindOptions {
  /** File mode for the socket file (e.g. 0o600), applied between bind() and listen(), so no client can connect before it holds. */
  mode?: number;
  /** listen() backlog (default 511). */
  backlog?: number;
  /** Remove the socket file when the listener closes (default true for filesystem paths). */
  unlinkOnClose?: boolean;
}

abstract class Listener<S> implements Disposable {
  #owned: OwnedFd;
  #path: string | null;
  #unlink: boolean;
  /** dev:ino of the socket file we created: close() removes the file only if it is still ours. */
  #fileId: string | null;
  protected abstract readonly label: string;

  protected constructor(owned: OwnedFd, path: string | null, unlink: boolean, fileId: string | null = null) {
    this.#owned = owned;
    this.#path = path;
    this.#unlink = unlink;
    this.#fileId = fileId;
  }

  protected static bindFd(type: number, path: string, opts: BindOptions | undefined, nonblocking = false): { owned: OwnedFd; unlink: boolean; fileId: string | null } {
    if (opts !== undefined && (opts === null || typeof opts !== "object")) throw invalidArgType("options", "an object", describe(opts));
    const mode = opts?.mode;
    if (mode !== undefined && typeof mode !== "number") throw invalidArgType("options.mode", "an integer in 0..0o7777 (a number such as 0o600, not a string)", describe(mode));
    if (mode !== undefined && (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)) throw outOfRange("options.mode", "an integer in 0..0o7777", String(mode));
    const backlog = opts?.backlog ?? 511;
    if (!Number.isInteger(backlog) || backlog < 1) throw outOfRange("options.backlog", "a positive integer", String(backlog));
    if (typeof path !== "string") throw invalidArgType("path", "a string", describe(path));
    const abstract = path.startsWith("\0");
    const owned = adopt(sys.socket(K.AF_UNIX, type, nonblocking));
    let fileId: string | null = null;
    try {
      sys.bind(owned.fd, path);
      if (!abstract) fileId = sys.fileIdentity(path);
      if (mode !== undefined && !abstract) sys.chmodPath(path, mode);
      sys.listen(owned.fd, backlog);
    } catch (e) {
      owned.close();
      // bind() created the socket file: don't leave it behind to make the next bind fail with EADDRINUSE.
      if (fileId !== null && sys.fileIdentity(path) === fileId) sys.unlinkPath(path);
      throw e;
    }
    return { owned, unlink: (opts?.unlinkOnClose ?? true) && !abstract, fileId };
  }

  get fd(): number {
    if (this.#owned.closed) throw closedError(this.label);
    return this.#owned.fd;
  }

  get closed(): boolean {
    return this.#owned.closed;
  }

  /** The bound path ("\0name" for abstract addresses), or null for a listener made from an fd. */
  get path(): string | null {
    return this.#path;
  }

  protected abstract wrap(owned: OwnedFd): S;

  /**
   * Accepts one connection, blocking the thread until one arrives. On a listener that you made
   * non-blocking yourself, EAGAIN is thrown as usual; on one the library made non-blocking (bind(),
   * or after accept()), it still blocks.
   */
  acceptSync(): S {
    for (;;) {
      const fd = this.fd;
      try {
        return this.wrap(adopt(sys.accept(fd)));
      } catch (e) {
        if (!isWouldBlock(e) || !this.#nonblocking) throw e;
      }
      sys.pollOne(fd, K.POLLIN, -1);
    }
  }

  #acceptQueue: OpQueue | null = null;

  /**
   * Accepts one connection without blocking the event loop. Concurrent accepts are served in call
   * order. The accepted socket is blocking for the sync API; its async methods never block.
   */
  accept(opts?: AsyncOptions): Promise<S> {
    let signal: AbortSignal | undefined;
    try {
      signal = signalOf(opts);
    } catch (e) {
      return Promise.reject(e);
    }
    const queue = (this.#acceptQueue ??= new OpQueue());
    return queue.run(signal, async () => {
      for (;;) {
        const fd = this.fd;
        if (!this.#nonblocking) {
          // A listener from bindSync/fromFd blocks in accept(); make it non-blocking once (acceptSync copes).
          sys.setNonblocking(fd, true);
          this.#nonblocking = true;
        }
        try {
          return this.wrap(adopt(sys.accept(fd)));
        } catch (e) {
          if (!isWouldBlock(e)) throw e;
        }
        await waitFor(fd, "readable", signal);
      }
    });
  }

  /** True when the library itself set O_NONBLOCK (so acceptSync keeps its blocking contract). */
  #nonblocking = false;
  /** @internal */
  protected markNonblocking(): void {
    this.#nonblocking = true;
  }

  /** `for await (const conn of listener)`: accepts until the listener is closed (then ends quietly). */
  async *[Symbol.asyncIterator](): AsyncGenerator<S, void, undefined> {
    for (;;) {
      if (this.closed) return;
      try {
        yield await this.accept();
      } catch (e) {
        if (e instanceof UnixAncillaryError && e.code === "ERR_UA_CLOSED") return;
        throw e;
      }
    }
  }

  protected onClose(fd: number): void {
    forget(fd);
  }

  close(): void {
    if (this.#owned.closed) return;
    this.onClose(this.#owned.fd);
    this.#owned.close();
    if (this.#unlink && this.#path !== null && this.#fileId !== null) {
      try {
        // Another listener may have bound the same path since (after someone removed our file):
        // its file has another dev:ino and stays.
        if (sys.fileIdentity(this.#path) === this.#fileId) sys.unlinkPath(this.#path);
      } catch {
        // the file may already be gone; closing must not throw
      }
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** A listening SOCK_STREAM Unix socket; accepts UnixStreams. Owns its fd and (unless unlinkOnClose: false) removes its socket file on close(). */
export class UnixListener extends Listener<UnixStream> {
  protected readonly label = "UnixListener";
  protected constructor(owned: OwnedFd, path: string | null, unlink: boolean, fileId: string | null = null) {
    super(owned, path, unlink, fileId);
  }

  /** Binds and listens on `path`. With `mode`, the file mode is set before listen(). */
  static bindSync(path: string, opts?: BindOptions): UnixListener {
    const { owned, unlink, fileId } = Listener.bindFd(K.SOCK_STREAM, path, opts);
    return new UnixListener(owned, path, unlink, fileId);
  }

  /** Like bindSync, with a non-blocking listening socket ready for accept() and `for await`. */
  static override async bind(path: string, opts?: BindOptions): Promise<UnixListener> {
    const { owned, unlink, fileId } = Listener.bindFd(K.SOCK_STREAM, path, opts, true);
    const l = new UnixListener(owned, path, unlink, fileId);
    l.markNonblocking();
    return l;
  }

  /** Takes ownership of a listening AF_UNIX stream socket. */
  static fromFd(fd: OwnedFd): UnixListener {
    checkSocketType(fd, "stream", "UnixListener");
    return new UnixListener(fd, null, false);
  }

  protected wrap(owned: OwnedFd): UnixStream {
    return UnixStream._wrap(owned);
  }
}

/** A listening SOCK_SEQPACKET Unix socket (Linux, FreeBSD); accepts UnixSeqpackets. Owns its fd and socket file like UnixListener. */
export class UnixSeqpacketListener extends Listener<UnixSeqpacket> {
  protected readonly label = "UnixSeqpacketListener";
  protected constructor(owned: OwnedFd, path: string | null, unlink: boolean, fileId: string | null = null) {
    super(owned, path, unlink, fileId);
  }

  static bindSync(path: string, opts?: BindOptions): UnixSeqpacketListener {
    requireSeqpacket();
    const { owned, unlink, fileId } = Listener.bindFd(K.SOCK_SEQPACKET, path, opts);
    return new UnixSeqpacketListener(owned, path, unlink, fileId);
  }

  static override async bind(path: string, opts?: BindOptions): Promise<UnixSeqpacketListener> {
    requireSeqpacket();
    const { owned, unlink, fileId } = Listener.bindFd(K.SOCK_SEQPACKET, path, opts, true);
    const l = new UnixSeqpacketListener(owned, path, unlink, fileId);
    l.markNonblocking();
    return l;
  }

  static fromFd(fd: OwnedFd): UnixSeqpacketListener {
    checkSocketType(fd, "seqpacket", "UnixSeqpacketListener");
    return new UnixSeqpacketListener(fd, null, false);
  }

  protected wrap(owned: OwnedFd): UnixSeqpacket {
    return UnixSeqpacket._wrap(owned);
  }
}
