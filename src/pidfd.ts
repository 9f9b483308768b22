/**
 * pidfds over Unix sockets (Linux >= 6.5): race-free process identity that survives pid reuse.
 * - setPassPidfd(sock, true) (SO_PASSPIDFD): the kernel attaches the sender's pidfd (SCM_PIDFD) to every
 *   message received on `sock`. The low-level messages() yields it as { type: "pidfd", fds: ScmRights }
 *   (`const [pidfd] = m.fds`; not taken, it is closed with the buffer);
 *   the high-level receives (recvFds*, async or not) close it with the rest of what they do not return.
 * - peerPidfd(sock) (SO_PEERPIDFD): a pidfd for the process at the other end of a connected socket.
 *
 * Ownership contract: peerPidfd returns a new OwnedFd the caller owns (the kernel installs it with
 * O_CLOEXEC). setPassPidfd/passPidfd own nothing.
 */
import { K, abi } from "./platform/index.ts";
import { adopt, fdOf, type FdLike, type OwnedFd } from "./owned-fd.ts";
import * as sys from "./sys.ts";
import { describe, invalidArgType, SystemError, UnixAncillaryError } from "./errors.ts";

function unsupported(what: string, cause?: unknown): UnixAncillaryError {
  const why = K.SO_PASSPIDFD < 0 ? `${abi.os} has no pidfds` : "it needs Linux 6.5 or later";
  return new UnixAncillaryError("ERR_UA_UNSUPPORTED", `${what} is not supported here: ${why}`, cause === undefined ? undefined : { cause });
}

/** A kernel without the option answers ENOPROTOOPT (or EINVAL): report that as ERR_UA_UNSUPPORTED. */
function mapError(e: unknown, what: string): unknown {
  if (e instanceof SystemError && (e.code === "ENOPROTOOPT" || e.code === "EINVAL")) return unsupported(what, e);
  return e;
}

/** Turns SO_PASSPIDFD on or off: with it on, every message received on `sock` carries the sender's pidfd. */
export function setPassPidfd(sock: FdLike, on: boolean): void {
  if (typeof on !== "boolean") throw invalidArgType("on", "a boolean", describe(on));
  const fd = fdOf(sock, "sock");
  if (K.SO_PASSPIDFD < 0) throw unsupported("SO_PASSPIDFD");
  try {
    sys.setsockoptInt(fd, K.SOL_SOCKET, K.SO_PASSPIDFD, on ? 1 : 0);
  } catch (e) {
    throw mapError(e, "SO_PASSPIDFD");
  }
}

/** Reads SO_PASSPIDFD. */
export function passPidfd(sock: FdLike): boolean {
  const fd = fdOf(sock, "sock");
  if (K.SO_PASSPIDFD < 0) throw unsupported("SO_PASSPIDFD");
  try {
    return sys.getsockoptInt(fd, K.SOL_SOCKET, K.SO_PASSPIDFD) !== 0;
  } catch (e) {
    throw mapError(e, "SO_PASSPIDFD");
  }
}

/**
 * A pidfd for the peer of a connected Unix socket (the process that connected, or the other end of a
 * socketpair), as an OwnedFd you own. Unlike a pid, it cannot come to name another process: signal it
 * with pidfd_send_signal, poll it for exit, or read its Pid from /proc/self/fdinfo. Throws a
 * SystemError when the peer is gone (ESRCH) and ERR_UA_UNSUPPORTED before Linux 6.5 / off Linux.
 */
export function peerPidfd(sock: FdLike): OwnedFd {
  const fd = fdOf(sock, "sock");
  if (K.SO_PEERPIDFD < 0) throw unsupported("SO_PEERPIDFD");
  let pidfd: number;
  try {
    pidfd = sys.getsockoptInt(fd, K.SOL_SOCKET, K.SO_PEERPIDFD);
  } catch (e) {
    throw mapError(e, "SO_PEERPIDFD");
  }
  return adopt(pidfd);
}
