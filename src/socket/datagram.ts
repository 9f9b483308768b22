/**
 * UnixDatagram: an AF_UNIX SOCK_DGRAM socket (connected before it sends fds).
 *
 * Ownership contract: as UnixSocket (base.ts).
 */
import { K } from "../platform/index.ts";
import type { OwnedFd } from "../owned-fd.ts";
import { Kind } from "../msg-io.ts";
import * as sys from "../sys.ts";
import { signalOf, type AsyncOptions } from "./coerce.ts";
import { checkSocketType, connectAsync, ownedPair, socketWith } from "./create.ts";
import { UnixSocket } from "./base.ts";

/** A SOCK_DGRAM Unix socket; fd passing needs it connected (connectSync, or pair()). Owns its fd. */
export class UnixDatagram extends UnixSocket {
  protected readonly kind = Kind.Message;
  protected readonly label = "UnixDatagram";

  protected constructor(owned: OwnedFd) {
    super(owned);
  }

  static pair(): [UnixDatagram, UnixDatagram] {
    const [a, b] = ownedPair(K.SOCK_DGRAM);
    return [new UnixDatagram(a), new UnixDatagram(b)];
  }

  static fromFd(fd: OwnedFd): UnixDatagram {
    checkSocketType(fd, "datagram", "UnixDatagram");
    return new UnixDatagram(fd);
  }

  /** An unconnected datagram socket bound to `path`. Connect it (connectSync) before sending fds. */
  static bindSync(path: string): UnixDatagram {
    return new UnixDatagram(socketWith(K.SOCK_DGRAM, (fd) => sys.bind(fd, path)));
  }

  /** A new datagram socket connected to `path`. */
  static connectSync(path: string): UnixDatagram {
    return new UnixDatagram(socketWith(K.SOCK_DGRAM, (fd) => sys.connect(fd, path)));
  }

  /** Connects this socket (e.g. one from bindSync) to `path`; returns this. */
  connectSync(path: string): this {
    sys.connect(this.fd, path);
    return this;
  }

  /** Async: a new datagram socket connected to `path`. */
  static async connect(path: string, opts?: AsyncOptions): Promise<UnixDatagram> {
    return new UnixDatagram(await connectAsync(K.SOCK_DGRAM, path, signalOf(opts)));
  }

  /** Async bindSync (binding never blocks; provided for symmetry). */
  static override async bind(path: string): Promise<UnixDatagram> {
    return UnixDatagram.bindSync(path);
  }
}
