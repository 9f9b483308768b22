/**
 * systemd integration without libsystemd: socket activation (sd_listen_fds_with_names) and the
 * notify protocol (sd_pid_notify_with_fds), including the file descriptor store.
 *
 *   for (const l of listenFds()) ...              // fds 3.. with names, CLOEXEC set, env cleared
 *   sdNotify({ READY: 1, STATUS: "serving" });
 *   sdNotifyFdStore("http", [listenFd]);          // FDSTORE=1 + FDNAME=http, fds attached (SCM_RIGHTS)
 *
 * Everything returns quietly (false / []) when systemd is not in charge ($NOTIFY_SOCKET or
 * $LISTEN_PID unset), so the same code runs under and outside systemd.
 *
 * Ownership: listenFds() adopts fds 3..3+N-1 only after checking every one is open, and adopts each
 * number once per process (a second call returns the same OwnedFds). sdNotify's fds stay the caller's;
 * its own datagram socket is closed before it returns, on every path.
 */
import { UnixDatagram } from "./socket.ts";
import { adopt, type FdLike, type OwnedFd } from "./owned-fd.ts";
import { UnixAncillaryError, SystemError } from "./errors.ts";
import { K } from "./platform/index.ts";
import * as sys from "./sys.ts";
import { describeSocket, type ListenerInfo } from "./sockinfo.ts";

/** SD_LISTEN_FDS_START */
export const LISTEN_FDS_START = 3;

/** One socket systemd passed (socket activation or the fd store): its OwnedFd, FDNAME and what it is. */
export interface ListenFd {
  /** The inherited fd, now owned by the caller (CLOEXEC set). */
  fd: OwnedFd;
  /** Its name from $LISTEN_FDNAMES ("unknown" when systemd gave none, as sd_listen_fds_with_names does). */
  name: string;
  /** What the fd is, when it is a socket (null for other fd types, e.g. a stored memfd). */
  socket: ListenerInfo | null;
}

/** Options of listenFds. */
export interface ListenFdsOptions {
  /** Remove LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES from process.env (default true), so children do not inherit them. */
  unsetEnvironment?: boolean;
  /** Environment to read (default process.env). */
  env?: Record<string, string | undefined>;
  /** The pid LISTEN_PID must equal (default process.pid). */
  pid?: number;
}

function unsetListenEnv(env: Record<string, string | undefined>): void {
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
}

/**
 * sd_listen_fds_with_names: the fds systemd (or any socket-activation supervisor) passed, from fd 3.
 * Returns [] when LISTEN_PID is missing or names another process (the variables were meant for a
 * parent). Throws ERR_UA_PROTOCOL for malformed variables. Sets FD_CLOEXEC on every passed fd.
 */
export function listenFds(opts: ListenFdsOptions = {}): ListenFd[] {
  const env = opts.env ?? process.env;
  const unset = opts.unsetEnvironment ?? true;
  try {
    const pidStr = env.LISTEN_PID;
    const fdsStr = env.LISTEN_FDS;
    if (pidStr === undefined || fdsStr === undefined) return [];
    if (!/^[1-9][0-9]*$/.test(pidStr)) throw new UnixAncillaryError("ERR_UA_PROTOCOL", `LISTEN_PID=${JSON.stringify(pidStr)} is not a pid`);
    if (Number(pidStr) !== (opts.pid ?? process.pid)) return [];
    if (!/^[0-9]+$/.test(fdsStr)) throw new UnixAncillaryError("ERR_UA_PROTOCOL", `LISTEN_FDS=${JSON.stringify(fdsStr)} is not a number`);
    const n = Number(fdsStr);
    if (n === 0) return [];
    if (n > 65536) throw new UnixAncillaryError("ERR_UA_PROTOCOL", `LISTEN_FDS=${n} is implausibly large`);
    let names: string[];
    if (env.LISTEN_FDNAMES !== undefined) {
      names = env.LISTEN_FDNAMES.split(":");
      if (names.length !== n) throw new UnixAncillaryError("ERR_UA_PROTOCOL", `LISTEN_FDNAMES has ${names.length} names for LISTEN_FDS=${n}`);
    } else {
      names = Array.from({ length: n }, () => "unknown");
    }
    // Validate every fd before taking ownership of any.
    for (let i = 0; i < n; i++) {
      const fd = LISTEN_FDS_START + i;
      if (!sys.isOpen(fd)) throw new UnixAncillaryError("ERR_UA_PROTOCOL", `LISTEN_FDS=${n} but fd ${fd} is not open`);
    }
    const out: ListenFd[] = [];
    for (let i = 0; i < n; i++) {
      const fd = LISTEN_FDS_START + i;
      // One owner per inherited fd, even if the environment was kept and we are called again.
      const earlier = adoptedListenFds.get(fd);
      if (earlier && !earlier.fd.closed) {
        out.push(earlier);
        continue;
      }
      sys.setCloexec(fd);
      const entry = { fd: adopt(fd), name: names[i]!, socket: describeSocket(fd) };
      adoptedListenFds.set(fd, entry);
      out.push(entry);
    }
    return out;
  } finally {
    if (unset) unsetListenEnv(env);
  }
}

/** LISTEN_FDS numbers this process already owns, so a second listenFds() call cannot create a second owner. */
const adoptedListenFds = new Map<number, ListenFd>();

// ---- notify -------------------------------------------------------------------------------------

/** A state for sdNotify: the raw "KEY=value\n…" text or an object of fields. */
export type NotifyState = string | Record<string, string | number | boolean>;

/** Options of sdNotify and its helpers (the socket path and fds to attach). */
export interface SdNotifyOptions {
  /** fds to attach (SCM_RIGHTS); they stay yours. Only with FDSTORE=1 does systemd keep them. */
  fds?: readonly FdLike[];
  /** Remove NOTIFY_SOCKET from process.env after sending (default false). */
  unsetEnvironment?: boolean;
  /** Socket to use instead of $NOTIFY_SOCKET ("/path" or "@abstract"). */
  socket?: string;
}

function encodeState(state: NotifyState): string {
  if (typeof state === "string") {
    if (state.length === 0) throw new TypeError("sdNotify: empty state");
    return state;
  }
  const lines: string[] = [];
  for (const [k, v] of Object.entries(state)) {
    if (!/^[A-Z_][A-Z0-9_]*$/.test(k)) throw new TypeError(`sdNotify: invalid variable name ${JSON.stringify(k)}`);
    const s = typeof v === "boolean" ? (v ? "1" : "0") : String(v);
    if (s.includes("\n")) throw new TypeError(`sdNotify: value of ${k} contains a newline`);
    lines.push(`${k}=${s}`);
  }
  if (lines.length === 0) throw new TypeError("sdNotify: empty state");
  return lines.join("\n");
}

function notifyAddress(raw: string): string {
  if (raw.startsWith("/")) return raw;
  if (raw.startsWith("@")) return "\0" + raw.slice(1);
  throw new UnixAncillaryError("ERR_UA_UNSUPPORTED", `NOTIFY_SOCKET=${JSON.stringify(raw)}: only absolute paths and @abstract names are supported (not vsock)`);
}

/**
 * sd_pid_notify_with_fds for this process: sends `state` ("READY=1\nSTATUS=..." or an object) as one
 * datagram to $NOTIFY_SOCKET, with `fds` attached. Returns false when NOTIFY_SOCKET is unset.
 * The send is non-blocking; if the manager's queue is full it retries for at most about 1 s
 * (20 × 50 ms poll), blocking the thread meanwhile — call it from startup/shutdown paths, not per request.
 */
export function sdNotify(state: NotifyState, opts: SdNotifyOptions = {}): boolean {
  const raw = opts.socket ?? process.env.NOTIFY_SOCKET;
  try {
    if (!raw) return false;
    const text = encodeState(state);
    using sock = UnixDatagram.connectSync(notifyAddress(raw));
    sys.setNonblocking(sock.fd, true);
    for (let tries = 0; ; tries++) {
      try {
        sock.sendFdsSync(text, opts.fds ?? []);
        return true;
      } catch (e) {
        if (!(e instanceof SystemError && e.code === "EAGAIN") || tries >= 20) throw e;
        sys.pollOne(sock.fd, K.POLLOUT, 50);
      }
    }
  } finally {
    if (opts.unsetEnvironment) delete process.env.NOTIFY_SOCKET;
  }
}

/** READY=1 (plus optional STATUS=). */
export function sdNotifyReady(status?: string): boolean {
  return sdNotify(status ? { READY: 1, STATUS: status } : "READY=1");
}

/** Microseconds of CLOCK_MONOTONIC (Bun's hrtime is CLOCK_MONOTONIC-based on Linux). */
function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}

/** RELOADING=1 with MONOTONIC_USEC= (required by Type=notify-reload). Send READY=1 when done. */
export function sdNotifyReloading(status?: string): boolean {
  const s: Record<string, string | number> = { RELOADING: 1, MONOTONIC_USEC: monotonicUsec().toString() };
  if (status) s.STATUS = status;
  return sdNotify(s);
}

/** STOPPING=1 */
export function sdNotifyStopping(): boolean {
  return sdNotify("STOPPING=1");
}

/** MAINPID=<pid>: after a handoff, tell systemd which process is the service's main process now. */
export function sdNotifyMainPid(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) throw new RangeError(`sdNotifyMainPid: invalid pid ${pid}`);
  return sdNotify({ MAINPID: pid });
}

/** FDNAME rules (sd_pid_notify_with_fds): at most 255 printable ASCII characters, no ':' . */
export function validFdName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_FD_NAME && /^[\x21-\x39\x3b-\x7e]+$/.test(name);
}

/** The longest fd name systemd accepts (and the handoff protocol's listener names). */
export const MAX_FD_NAME = 255;

/**
 * FDSTORE=1 + FDNAME=<name> with `fds` attached: systemd keeps them (needs FileDescriptorStoreMax>0)
 * and passes them back through LISTEN_FDS/LISTEN_FDNAMES on the next start. `poll: false` adds
 * FDPOLL=0 (keep the fds even when they report POLLHUP/POLLERR).
 */
export function sdNotifyFdStore(name: string, fds: readonly FdLike[], opts: { poll?: boolean } = {}): boolean {
  if (!validFdName(name)) throw new TypeError(`sdNotifyFdStore: invalid FDNAME ${JSON.stringify(name)} (1-255 printable ASCII characters, no ':')`);
  if (fds.length === 0) throw new TypeError("sdNotifyFdStore: attach at least one fd");
  const state: Record<string, string | number> = { FDSTORE: 1, FDNAME: name };
  if (opts.poll === false) state.FDPOLL = 0;
  return sdNotify(state, { fds });
}

/** FDSTOREREMOVE=1 + FDNAME=<name>: drop stored fds of that name. */
export function sdNotifyFdStoreRemove(name: string): boolean {
  if (!validFdName(name)) throw new TypeError(`sdNotifyFdStoreRemove: invalid FDNAME ${JSON.stringify(name)}`);
  return sdNotify({ FDSTOREREMOVE: 1, FDNAME: name });
}

/** WATCHDOG=1 */
export function sdNotifyWatchdog(): boolean {
  return sdNotify("WATCHDOG=1");
}
