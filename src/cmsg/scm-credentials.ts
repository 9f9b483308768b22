/**
 * ScmCredentials: the SCM_CREDENTIALS payload {pid, uid, gid} (Linux) as a value. No fds, no FFI: it
 * lives with the codec so the control-message registry can build it from received bytes.
 */
import { describe, invalidArgType } from "../errors.ts";

function checkId(v: unknown, name: string, signed: boolean): number {
  const max = signed ? 0x7fff_ffff : 0xffff_ffff;
  if (typeof v !== "number" || !Number.isInteger(v) || v < (signed ? -0x8000_0000 : 0) || v > max) {
    throw invalidArgType(name, signed ? "a 32-bit signed integer" : "a 32-bit unsigned integer", describe(v));
  }
  return v;
}

/** Sender credentials carried by an SCM_CREDENTIALS control message (Linux). */
export class ScmCredentials {
  readonly #pid: number;
  readonly #uid: number;
  readonly #gid: number;

  /** No validation beyond the integer ranges: the kernel decides at send time (EPERM if not permitted). */
  constructor(pid: number, uid: number, gid: number) {
    this.#pid = checkId(pid, "pid", true);
    this.#uid = checkId(uid, "uid", false);
    this.#gid = checkId(gid, "gid", false);
  }

  /** getpid(), getuid(), getgid(): always permitted. */
  static forThisProcess(): ScmCredentials {
    return new ScmCredentials(process.pid, process.getuid!(), process.getgid!());
  }

  /** 0 when the sender is in a pid namespace the receiver cannot see. Pids are recycled: log, don't authorize. */
  get pid(): number {
    return this.#pid;
  }
  get uid(): number {
    return this.#uid;
  }
  get gid(): number {
    return this.#gid;
  }

  equals(other: ScmCredentials): boolean {
    return other instanceof ScmCredentials && other.pid === this.#pid && other.uid === this.#uid && other.gid === this.#gid;
  }

  toJSON(): { pid: number; uid: number; gid: number } {
    return { pid: this.#pid, uid: this.#uid, gid: this.#gid };
  }
}
