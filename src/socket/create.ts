/**
 * Creating and checking AF_UNIX sockets: socketpair, connect (blocking and async), fromFd's check.
 *
 * Ownership contract: every fd made here is wrapped in an OwnedFd at once and closed if a later step
 * fails; on success the OwnedFd goes to the caller (the socket class that wraps it).
 */
import { K, abi } from "../platform/index.ts";
import { adopt, OwnedFd } from "../owned-fd.ts";
import * as sys from "../sys.ts";
import { invalidArgType, SystemError, UnixAncillaryError } from "../errors.ts";
import { describe } from "../cmsg/sizes.ts";
import { abortError } from "../async/queue.ts";
import { forget, waitFor } from "../async/wait.ts";
import { isWouldBlock, sleep } from "../async/attempt.ts";

type SocketType = "stream" | "datagram" | "seqpacket";
const TYPE_NUMBER: Record<SocketType, number> = { stream: K.SOCK_STREAM, datagram: K.SOCK_DGRAM, seqpacket: K.SOCK_SEQPACKET };

export function checkSocketType(owned: OwnedFd, type: SocketType, what: string): void {
  if (!(owned instanceof OwnedFd)) throw invalidArgType("fd", "an OwnedFd", describe(owned));
  // Both the family and the type: the kernel silently drops SCM_RIGHTS sent on a TCP or UDP socket.
  const domain = sys.socketDomain(owned.fd);
  if (domain !== K.AF_UNIX) {
    const family = domain === K.AF_INET ? "AF_INET" : domain === K.AF_INET6 ? "AF_INET6" : `family ${domain}`;
    const e = new TypeError(`${what}.fromFd: fd ${owned.fd} is not an AF_UNIX socket (${family}); Unix sockets carry fds, other families drop them`);
    (e as TypeError & { code: string }).code = "ERR_INVALID_ARG_VALUE";
    throw e;
  }
  const actual = sys.getsockoptInt(owned.fd, K.SOL_SOCKET, K.SO_TYPE);
  if (actual !== TYPE_NUMBER[type]) {
    const e = new TypeError(`${what}.fromFd: fd ${owned.fd} is not a ${type} socket (SO_TYPE ${actual})`);
    (e as TypeError & { code: string }).code = "ERR_INVALID_ARG_VALUE";
    throw e;
  }
}

export function requireSeqpacket(): void {
  if (!abi.hasSeqpacket) throw new UnixAncillaryError("ERR_UA_UNSUPPORTED", `AF_UNIX SOCK_SEQPACKET is not supported on ${abi.os}`);
}

/** A new AF_UNIX socket of `type` once `setup(fd)` succeeded (connect, bind); closed if setup throws. */
export function socketWith(type: number, setup: (fd: number) => void): OwnedFd {
  const owned = adopt(sys.socket(K.AF_UNIX, type));
  try {
    setup(owned.fd);
  } catch (e) {
    owned.close();
    throw e;
  }
  return owned;
}

/** Both ends of a new socketpair, owned. */
export function ownedPair(type: number): [OwnedFd, OwnedFd] {
  const [a, b] = sys.socketpair(type);
  return [adopt(a), adopt(b)];
}

/**
 * Connects a new socket without blocking the event loop. An AF_UNIX connect to a listener whose backlog
 * is full fails with EAGAIN instead of waiting; readiness cannot signal "backlog has room", so that case
 * retries with a short backoff (1 ms doubling to 50 ms) until it connects, fails otherwise, or is aborted.
 * The returned socket is blocking again, so the sync API works on it too.
 */
export async function connectAsync(type: number, path: string, signal: AbortSignal | undefined): Promise<OwnedFd> {
  if (signal?.aborted) throw abortError(signal);
  const owned = adopt(sys.socket(K.AF_UNIX, type, true));
  try {
    let delay = 1;
    for (;;) {
      try {
        sys.connect(owned.fd, path);
        break;
      } catch (e) {
        if (e instanceof SystemError && (e.code === "EINPROGRESS" || e.code === "EALREADY")) {
          await waitFor(owned.fd, "writable", signal);
          const err = sys.getsockoptInt(owned.fd, K.SOL_SOCKET, K.SO_ERROR);
          if (err !== 0) throw new SystemError("connect", err, path);
          break;
        }
        if (!isWouldBlock(e)) throw e;
      }
      await sleep(delay, signal);
      delay = Math.min(delay * 2, 50);
    }
    sys.setNonblocking(owned.fd, false);
    return owned;
  } catch (e) {
    forget(owned.fd);
    owned.close();
    throw e;
  }
}
