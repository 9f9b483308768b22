/**
 * Peer authentication for both ends of a handoff, from SO_PEERCRED (LOCAL_PEERCRED on BSDs).
 */
import { UnixAncillaryError } from "../errors.ts";
import type { PeerCredentials } from "../credentials.ts";
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
