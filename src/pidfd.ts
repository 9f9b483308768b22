/**
 * pidfds over Unix sockets (Linux >= 6.5): race-free process identity that survives pid reuse.
 * - setPassPidfd(sock, true) (SO_PASSPIDFD): the kernel attaches the sender's pidfd (SCM_PIDFD) to every
 *   message received on `sock`. The low-level messages() yields it as { type: "pidfd", fds: ScmRights }
 *   (`const [pidfd] = m.fds`; not taken, it is closed with the buffer);
 *   the high-level receives (recvFds*, async or not) close it with the rest of what they do not return.
 * - peerPidfd(sock) (SO_PEERPIDFD): a pidfd for the process at the other end of a connected socket.
 * - @internal pidfdPid / pidfdExited: what a pidfd names now (the handoff's peer check uses them).
 *
 * Ownership contract: peerPidfd returns a new OwnedFd the caller owns (the kernel installs it with
 * O_CLOEXEC). setPassPidfd/passPidfd/pidfdPid/pidfdExited own nothing (fds are lent for the call); the
 * support probe closes the socketpair it makes.
 */
import { K, abi } from "./platform/index.ts";
import { adopt, fdOf, type FdLike, type OwnedFd } from "./owned-fd.ts";
import * as sys from "./sys.ts";
import { nodeFs } from "./node-fs.ts";
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
 * with pidfd_send_signal, poll it for exit, or read its Pid from /proc/self/fdinfo. A peer that has
 * exited and been reaped: Linux >= 6.16 returns a pidfd whose Pid is -1 (and which polls readable);
 * older kernels throw a SystemError (ESRCH, or EINVAL before pidfs). Throws ERR_UA_UNSUPPORTED before
 * Linux 6.5 / off Linux.
 */
export function peerPidfd(sock: FdLike): OwnedFd {
  const fd = fdOf(sock, "sock");
  if (K.SO_PEERPIDFD < 0) throw unsupported("SO_PEERPIDFD");
  let pidfd: number;
  try {
    pidfd = sys.getsockoptInt(fd, K.SOL_SOCKET, K.SO_PEERPIDFD);
  } catch (e) {
    // EINVAL is ambiguous: a kernel (or emulator) without the option, or (Linux 6.5-6.8) a reaped
    // peer. If the option works on a socketpair of our own, it is the peer that is gone.
    if (e instanceof SystemError && e.code === "EINVAL" && peerPidfdWorks()) {
      e.message += " (SO_PEERPIDFD: the peer process has exited)";
      throw e;
    }
    throw mapError(e, "SO_PEERPIDFD");
  }
  return adopt(pidfd);
}

let probed: boolean | null = null;

/** Whether SO_PEERPIDFD works here: asked once, on a socketpair whose peer is this (live) process. */
function peerPidfdWorks(): boolean {
  if (probed !== null) return probed;
  let ok = false;
  const [a, b] = sys.socketpair(K.SOCK_STREAM);
  try {
    sys.closeFd(sys.getsockoptInt(a, K.SOL_SOCKET, K.SO_PEERPIDFD));
    ok = true;
  } catch {
    // unsupported
  } finally {
    sys.closeFd(a);
    sys.closeFd(b);
  }
  probed = ok;
  return ok;
}

/**
 * @internal The pid a pidfd names, from the `Pid:` line of /proc/self/fdinfo/<fd>: -1 once the process
 * has exited and been reaped, 0 if it is outside our pid namespace; null when /proc cannot tell
 * (not mounted, or not a pidfd).
 */
export function pidfdPid(pidfd: FdLike): number | null {
  const fd = fdOf(pidfd, "pidfd");
  let text: string;
  try {
    text = nodeFs().readFileSync(`/proc/self/fdinfo/${fd}`, "utf8");
  } catch {
    return null;
  }
  const m = /^Pid:\s*(-?\d+)/m.exec(text);
  return m ? Number(m[1]) : null;
}

/**
 * @internal Whether the process a pidfd names has exited (zombie or reaped): a pidfd polls readable
 * then. poll() with timeout 0, so it works on every libc (musl has no pidfd_send_signal wrapper).
 */
export function pidfdExited(pidfd: FdLike): boolean {
  const fd = fdOf(pidfd, "pidfd");
  return (sys.pollOne(fd, K.POLLIN, 0) & (K.POLLIN | K.POLLHUP | K.POLLERR)) !== 0;
}
