/**
 * Peer authentication for both ends of a handoff, from SO_PEERCRED (LOCAL_PEERCRED on BSDs), pinned
 * with SO_PEERPIDFD where the kernel has it (Linux >= 6.5).
 *
 * SO_PEERCRED's pid is a number recorded at connect() (listen() for the accepting side's end): once
 * that process exits and is reaped, the number can name another process, and a policy that looks the
 * pid up (in /proc, say) would judge the wrong one. pinPeer takes the peer's pidfd, which names the
 * connecting process itself; verifyPeer then checks that it has not exited and that its pid is the one
 * SO_PEERCRED reported — after the policy ran and again right before anything is sent.
 *
 * Ownership contract: pinPeer returns a new OwnedFd (or null) the caller owns and must close on every
 * path; it closes the pidfd itself when it throws. checkPeer and verifyPeer own nothing.
 */
import { UnixAncillaryError } from "../errors.ts";
import type { PeerCredentials } from "../credentials.ts";
import type { OwnedFd } from "../owned-fd.ts";
import type { UnixSeqpacket } from "../socket.ts";
import { peerPidfd, pidfdExited, pidfdPid } from "../pidfd.ts";
import * as sys from "../sys.ts";

/**
 * - "same-uid" (default): the peer's uid equals our effective uid.
 * - "any": no check (only the control socket's file permissions protect it).
 * - { uids?, gids? }: the peer's uid is in `uids` or its gid in `gids`.
 * - a function: return true to accept; false or a string (the reason) to refuse.
 */
export type PeerPolicy =
  | "same-uid"
  | "any"
  | { uids?: readonly number[]; gids?: readonly number[] }
  | ((peer: PeerCredentials) => boolean | string);

export function checkPeer(policy: PeerPolicy | undefined, cred: PeerCredentials, role: string): void {
  const p = policy ?? "same-uid";
  let verdict: boolean | string;
  if (p === "any") verdict = true;
  else if (p === "same-uid") verdict = cred.uid === sys.geteuid() || `uid ${cred.uid} is not ours (${sys.geteuid()})`;
  else if (typeof p === "function") verdict = p(cred);
  else if (typeof p === "object" && p !== null) verdict = !!(p.uids?.includes(cred.uid) || p.gids?.includes(cred.gid)) || `uid ${cred.uid} / gid ${cred.gid} not allowed`;
  else throw new TypeError(`invalid peerPolicy ${String(p)}`);
  if (verdict !== true) {
    const why = typeof verdict === "string" ? verdict : "refused by peerPolicy";
    throw new UnixAncillaryError("ERR_UA_PEER_REJECTED", `handoff ${role} rejected (pid ${cred.pid ?? "?"}, uid ${cred.uid}, gid ${cred.gid}): ${why}`);
  }
}

function rejected(role: string, cred: PeerCredentials, why: string): UnixAncillaryError {
  return new UnixAncillaryError("ERR_UA_PEER_REJECTED", `handoff ${role} rejected (pid ${cred.pid ?? "?"}, uid ${cred.uid}, gid ${cred.gid}): ${why}`);
}

/**
 * The peer's pidfd (SO_PEERPIDFD), checked with verifyPeer, or null where the kernel has no
 * SO_PEERPIDFD (ERR_UA_UNSUPPORTED: the checks fall back to SO_PEERCRED alone). Like SO_PEERCRED, it
 * names the process that created the socketpair for a socketpair end (spawn mode: this process).
 * Throws ERR_UA_PEER_REJECTED if the peer has already exited.
 */
export function pinPeer(sock: UnixSeqpacket, cred: PeerCredentials, role: string): OwnedFd | null {
  if (cred.pid === null) return null;
  let pidfd: OwnedFd;
  try {
    pidfd = peerPidfd(sock);
  } catch (e) {
    if (e instanceof UnixAncillaryError && e.code === "ERR_UA_UNSUPPORTED") return null;
    // ESRCH (or EINVAL before pidfs): the connecting process is gone
    throw rejected(role, cred, `its pidfd cannot be taken, it has exited (${(e as Error).message})`);
  }
  try {
    verifyPeer(pidfd, cred, role);
  } catch (e) {
    pidfd.close();
    throw e;
  }
  return pidfd;
}

/**
 * Throws ERR_UA_PEER_REJECTED unless the process `pidfd` names is alive (the pidfd does not poll
 * readable) and still has the pid SO_PEERCRED reported (/proc/self/fdinfo's Pid; skipped when /proc
 * cannot tell — an unexited pidfd's process keeps its pid, so the liveness check alone suffices then).
 * A null pidfd (unsupported) passes.
 */
export function verifyPeer(pidfd: OwnedFd | null, cred: PeerCredentials, role: string): void {
  if (pidfd === null) return;
  if (pidfd.closed) throw rejected(role, cred, "its pidfd was closed or released before the check (UpgradePeer.pidfd is borrowed: dup() it to keep one)");
  if (pidfdExited(pidfd)) throw rejected(role, cred, `process ${cred.pid ?? "?"} has exited (its pidfd polls readable); its pid may already name another process`);
  const now = pidfdPid(pidfd);
  if (now !== null && now !== cred.pid) {
    throw rejected(role, cred, now === -1 ? `process ${cred.pid ?? "?"} has exited and been reaped; its pid may already name another process` : `its pidfd names pid ${now}, not the pid SO_PEERCRED reported`);
  }
}
