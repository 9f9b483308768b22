/**
 * UnixSeqpacket: a connected AF_UNIX SOCK_SEQPACKET socket (message boundaries, connection-oriented).
 *
 * Ownership contract: as UnixSocket (base.ts).
 */
import { K } from "../platform/index.ts";
import type { OwnedFd } from "../owned-fd.ts";
import { Kind } from "../msg-io.ts";
import * as sys from "../sys.ts";
import { signalOf, type AsyncOptions } from "./coerce.ts";
import { checkSocketType, connectAsync, ownedPair, requireSeqpacket, socketWith } from "./create.ts";
import { UnixSocket } from "./base.ts";

/** A connected SOCK_SEQPACKET Unix socket (Linux, FreeBSD): message boundaries kept, fds with each message. Owns its fd. */
export class UnixSeqpacket extends UnixSocket {
  protected readonly kind = Kind.Message;
  protected readonly label = "UnixSeqpacket";

  protected constructor(owned: OwnedFd) {
    super(owned);
  }

  static pair(): [UnixSeqpacket, UnixSeqpacket] {
    requireSeqpacket();
    const [a, b] = ownedPair(K.SOCK_SEQPACKET);
    return [new UnixSeqpacket(a), new UnixSeqpacket(b)];
  }

  static fromFd(fd: OwnedFd): UnixSeqpacket {
    checkSocketType(fd, "seqpacket", "UnixSeqpacket");
    return new UnixSeqpacket(fd);
  }

  static connectSync(path: string): UnixSeqpacket {
    requireSeqpacket();
    return new UnixSeqpacket(socketWith(K.SOCK_SEQPACKET, (fd) => sys.connect(fd, path)));
  }

  /** @internal */
  static _wrap(owned: OwnedFd): UnixSeqpacket {
    return new UnixSeqpacket(owned);
  }

  /** Async connectSync. */
  static async connect(path: string, opts?: AsyncOptions): Promise<UnixSeqpacket> {
    requireSeqpacket();
    return new UnixSeqpacket(await connectAsync(K.SOCK_SEQPACKET, path, signalOf(opts)));
  }
}
