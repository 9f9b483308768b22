/**
 * Process identity over Unix sockets.
 * - ScmCredentials: the SCM_CREDENTIALS payload {pid, uid, gid} (Linux). The kernel checks a claim at
 *   send time (EPERM unless it is yours or you are privileged); with SO_PASSCRED on, it attaches the
 *   sender's credentials to every message.
 * - peerCredentials(sock): who is at the other end of a connected socket (SO_PEERCRED on Linux,
 *   LOCAL_PEERCRED/LOCAL_PEERPID on darwin/FreeBSD). Queried once per call, no fds involved.
 * - setPassRights(sock, false): SO_PASSRIGHTS (Linux >= 6.16) makes the kernel refuse SCM_RIGHTS sent to
 *   this socket, for sockets that must never receive fds.
 */
import { K, abi } from "./platform/index.ts";
import { fdOf, type FdLike } from "./owned-fd.ts";
import * as sys from "./sys.ts";
import { invalidArgType, SystemError, UnixAncillaryError } from "./errors.ts";
import { describe } from "./cmsg/sizes.ts";

export { ScmCredentials } from "./cmsg/scm-credentials.ts";

function requireLinuxCreds(what: string): void {
  if (abi.constants.SO_PASSCRED < 0) throw new UnixAncillaryError("ERR_UA_UNSUPPORTED", `${what} needs SO_PASSCRED, which ${abi.os} does not have`);
}

/** Turns SO_PASSCRED on or off: with it on, every received message carries the sender's credentials. */
export function setPassCred(sock: FdLike, on: boolean): void {
  requireLinuxCreds("setPassCred");
  if (typeof on !== "boolean") throw invalidArgType("on", "a boolean", describe(on));
  sys.setsockoptInt(fdOf(sock, "sock"), K.SOL_SOCKET, K.SO_PASSCRED, on ? 1 : 0);
}

/** Whether SO_PASSCRED is on for `sock` (messages then carry the sender's credentials). @throws SystemError */
export function passCred(sock: FdLike): boolean {
  requireLinuxCreds("passCred");
  return sys.getsockoptInt(fdOf(sock, "sock"), K.SOL_SOCKET, K.SO_PASSCRED) !== 0;
}

/** Identity of the peer of a connected Unix socket. `pid` is null where the platform cannot tell. */
export interface PeerCredentials {
  readonly pid: number | null;
  readonly uid: number;
  readonly gid: number;
}

/**
 * Decodes a struct xucred as LOCAL_PEERCRED filled it: uid, the first group as gid (0xffffffff when the
 * kernel listed none) and, where the layout has cr_pid (FreeBSD), the pid; 0 there means the kernel
 * predates cr_pid (a peer is never pid 0), so null. Exported for tests.
 */
export function parseXucred(x: NonNullable<typeof abi.xucred>, view: DataView): PeerCredentials {
  const uid = view.getUint32(x.uid.offset, true);
  const ngroups = view.getInt16(x.ngroups.offset, true);
  const gid = ngroups > 0 ? view.getUint32(x.groups.offset, true) : 0xffff_ffff;
  let pid: number | null = null;
  if (x.pid !== null) {
    const p = view.getInt32(x.pid.offset, true);
    if (p > 0) pid = p;
  }
  return { pid, uid, gid };
}

const credBuf = new Uint8Array(abi.ucred?.size ?? abi.xucred?.size ?? 16);
const credView = new DataView(credBuf.buffer);

/** The credentials the peer had when the connection was made (SO_PEERCRED / LOCAL_PEERCRED). */
export function peerCredentials(sock: FdLike): PeerCredentials {
  const fd = fdOf(sock, "sock");
  if (abi.ucred && K.SO_PEERCRED >= 0) {
    const u = abi.ucred;
    credBuf.fill(0);
    sys.getsockoptBytes(fd, K.SOL_SOCKET, K.SO_PEERCRED, credBuf.subarray(0, u.size));
    return { pid: credView.getInt32(u.pid.offset, true), uid: credView.getUint32(u.uid.offset, true), gid: credView.getUint32(u.gid.offset, true) };
  }
  if (abi.xucred && K.LOCAL_PEERCRED >= 0) {
    credBuf.fill(0);
    sys.getsockoptBytes(fd, K.SOL_LOCAL, K.LOCAL_PEERCRED, credBuf.subarray(0, abi.xucred.size));
    const cred = parseXucred(abi.xucred, credView);
    if (cred.pid === null && K.LOCAL_PEERPID >= 0) {
      let pid: number | null;
      try {
        pid = sys.getsockoptInt(fd, K.SOL_LOCAL, K.LOCAL_PEERPID);
      } catch {
        pid = null;
      }
      return { pid, uid: cred.uid, gid: cred.gid };
    }
    return cred;
  }
  throw new UnixAncillaryError("ERR_UA_UNSUPPORTED", `peer credentials are not available on ${abi.name}`);
}

function requirePassRights(): void {
  if (K.SO_PASSRIGHTS < 0) throw new UnixAncillaryError("ERR_UA_UNSUPPORTED", `SO_PASSRIGHTS does not exist on ${abi.os}`);
}

/** A kernel without SO_PASSRIGHTS answers ENOPROTOOPT (or EINVAL): report that as ERR_UA_UNSUPPORTED. */
function passRightsError(e: unknown): unknown {
  if (e instanceof SystemError && (e.code === "ENOPROTOOPT" || e.code === "EINVAL")) {
    return new UnixAncillaryError("ERR_UA_UNSUPPORTED", "SO_PASSRIGHTS is not supported by this kernel (it needs Linux 6.16 or later)", { cause: e });
  }
  return e;
}

/**
 * SO_PASSRIGHTS (Linux >= 6.16). `on = false` makes the kernel reject SCM_RIGHTS sent to this socket
 * (the sender's sendmsg fails with EPERM), so a socket that must never receive fds cannot be handed any.
 * Throws ERR_UA_UNSUPPORTED on kernels or platforms without the option.
 */
export function setPassRights(sock: FdLike, on: boolean): void {
  if (typeof on !== "boolean") throw invalidArgType("on", "a boolean", describe(on));
  const fd = fdOf(sock, "sock");
  requirePassRights();
  try {
    sys.setsockoptInt(fd, K.SOL_SOCKET, K.SO_PASSRIGHTS, on ? 1 : 0);
  } catch (e) {
    throw passRightsError(e);
  }
}

/** Reads SO_PASSRIGHTS; throws ERR_UA_UNSUPPORTED where the kernel lacks it. */
export function passRights(sock: FdLike): boolean {
  const fd = fdOf(sock, "sock");
  requirePassRights();
  try {
    return sys.getsockoptInt(fd, K.SOL_SOCKET, K.SO_PASSRIGHTS) !== 0;
  } catch (e) {
    throw passRightsError(e);
  }
}
