/**
 * The new side: ask the running process for its listeners, adopt them, then acknowledge.
 *
 *   await using ho = await requestHandoff({ path });          // or no options when spawned by spawnSuccessor
 *   const app = await adoptBunServe(ho.take("http"), { fetch });
 *   await warmUp();
 *   const { confirmed } = await ho.ready();                   // the commit: we accept, the old side drains
 *
 * Adopters given a ReceivedListener from this handoff serve it but do not accept before the commit:
 * ready() sends ready, waits for the old side's done (it has stopped accepting), starts accepting on
 * every adopted listener (AcceptGate.resume + the adopter's post-commit self-check), then sends serving.
 * A successor that dies before that has accepted nothing, so it costs no connection.
 *
 * Every fd received and not taken (take(), or an adopter) is closed by ready(), abort() or dispose.
 *
 * Peer check: SO_PEERCRED against peerPolicy; where SO_PEERPIDFD works (Linux >= 6.5) the old side's
 * pidfd pins who that pid is while the policy runs (policy.ts), so oldPid names a live process, not a
 * reused number. That pidfd is owned here only for the check and closed before requestHandoff returns
 * or throws.
 */
import { UnixSeqpacket } from "../socket.ts";
import { OwnedFd, closeAll, adopt } from "../owned-fd.ts";
import { peerCredentials } from "../credentials.ts";
import { UnixAncillaryError, SystemError } from "../errors.ts";
import * as sys from "../sys.ts";
import { K } from "../platform/index.ts";
import { Channel, PeerClosedError } from "./channel.ts";
import { FrameType, protocolError, type OfferedListener } from "./protocol.ts";
import { describeSocket, type ListenerFamily, type ListenerType } from "../sockinfo.ts";
import { checkPeer, pinPeer, verifyPeer, type PeerPolicy } from "./policy.ts";
import { intOption, MAX_TIMEOUT_MS } from "./validate.ts";

/** A start routine an adopter registers for a listener of a handoff that has not committed yet. */
export type DeferredStart = () => void | Promise<void>;
/**
 * @internal Adopters look a ReceivedListener up here: if found, they serve it without accepting and
 * hand the function their start routine, which ready() runs after the old side's done.
 */
export const deferredStarts = new WeakMap<object, (start: DeferredStart) => void>();

/** Environment variable through which spawnSuccessor tells the child its control fd. */
export const HANDOFF_FD_ENV = "UA_HANDOFF_FD";
/** Environment variable naming a control socket path (optional convention). */
export const HANDOFF_PATH_ENV = "UA_HANDOFF_PATH";

/** One listening socket received in a handoff, with what the kernel says it is. */
export interface ReceivedListener {
  name: string;
  /** The listening socket, owned by whoever holds this object until an adopter takes it. */
  fd: OwnedFd;
  family: ListenerFamily;
  address: string;
  port: number;
  type: ListenerType;
}

/** Options of requestHandoff (all optional: a spawned successor needs none). */
export interface RequestHandoffOptions {
  /** Control socket path of the running process. */
  path?: string;
  /** An inherited, connected SOCK_SEQPACKET fd (default: $UA_HANDOFF_FD, which spawnSuccessor sets). */
  fd?: number | OwnedFd;
  /** Time to connect and receive the offer, and later for ready() to get the confirmation (default 30 000 ms each). */
  timeoutMs?: number;
  /** Who may hand us listeners (default "same-uid"). */
  peerPolicy?: PeerPolicy;
  /** Only ask for these names. */
  want?: string[];
  signal?: AbortSignal;
}

/** What Handoff.ready() resolves with: whether the old process confirmed the commit. */
export interface ReadyResult {
  /** true: the old side confirmed (done frame) and stops accepting. false: it vanished without a word (crash) — we are the only server now. */
  confirmed: boolean;
  oldPid: number;
}

/** Whether this process was started by spawnSuccessor (or otherwise given $UA_HANDOFF_FD). */
export function isHandoffChild(): boolean {
  return !!process.env[HANDOFF_FD_ENV];
}

function takeInheritedFd(): OwnedFd | null {
  const v = process.env[HANDOFF_FD_ENV];
  if (!v) return null;
  delete process.env[HANDOFF_FD_ENV];
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UnixAncillaryError("ERR_UA_PROTOCOL", `${HANDOFF_FD_ENV}=${JSON.stringify(v)} is not an fd number`);
  if (!sys.isOpen(n)) throw new UnixAncillaryError("ERR_UA_PROTOCOL", `${HANDOFF_FD_ENV}=${n} but fd ${n} is not open`);
  const type = sys.getsockoptInt(n, K.SOL_SOCKET, K.SO_TYPE, "getsockopt");
  if (type !== K.SOCK_SEQPACKET) throw new UnixAncillaryError("ERR_UA_PROTOCOL", `${HANDOFF_FD_ENV}=${n} but fd ${n} is not a SOCK_SEQPACKET socket (SO_TYPE ${type})`);
  sys.setCloexec(n);
  return adopt(n);
}

/**
 * The new side of a handoff (what requestHandoff resolves with): the offered listeners, to `take()`
 * and adopt, then `ready()` to commit.
 *
 * Ownership: every received listening socket is an OwnedFd held here until `take(name)` hands it to
 * you (or an adopter); `close()`/disposal closes the control channel and every listener not taken.
 */
export class Handoff implements AsyncDisposable, Disposable {
  readonly #chan: Channel;
  readonly #listeners: Map<string, ReceivedListener>;
  readonly #taken = new Set<string>();
  readonly #timeoutMs: number;
  readonly #starts: DeferredStart[] = [];
  #done = false;
  /** The old process's pid (SO_PEERCRED; where SO_PEERPIDFD works, checked to be alive and to be that process when requestHandoff connected). */
  readonly oldPid: number;
  /** How long the old side waits for ready() from the moment it accepted us (ms), if it said so. */
  readonly oldTimeoutMs: number | null;

  /** @internal */
  constructor(chan: Channel, listeners: Map<string, ReceivedListener>, oldPid: number, timeoutMs: number, oldTimeoutMs: number | null) {
    this.#chan = chan;
    this.#listeners = listeners;
    this.oldPid = oldPid;
    this.#timeoutMs = timeoutMs;
    this.oldTimeoutMs = oldTimeoutMs;
    for (const l of listeners.values()) deferredStarts.set(l, (start) => this.#starts.push(start));
  }

  /** Received listeners by name (fds still owned by this handoff until taken). */
  get listeners(): ReadonlyMap<string, ReceivedListener> {
    return this.#listeners;
  }

  /** Takes ownership of a received listener: from now on the caller (or the adopter it goes to) closes it. */
  take(name: string): ReceivedListener {
    const l = this.#listeners.get(name);
    if (!l) throw new UnixAncillaryError("ERR_UA_PROTOCOL", `handoff: no listener named "${name}" was offered (offered: ${[...this.#listeners.keys()].join(", ") || "none"})`);
    if (this.#taken.has(name)) throw new UnixAncillaryError("ERR_UA_BUSY", `handoff: listener "${name}" was already taken`);
    this.#taken.add(name);
    return l;
  }

  #closeUnclaimed(): void {
    for (const [name, l] of this.#listeners) if (!this.#taken.has(name)) l.fd.close();
  }

  /** From now on adopters start accepting at once. */
  #forgetDeferrals(): void {
    for (const l of this.#listeners.values()) deferredStarts.delete(l);
  }

  async #startAll(): Promise<void> {
    this.#forgetDeferrals();
    for (const start of this.#starts.splice(0)) await start();
  }

  /**
   * Says we are warm; when the old side answers done (it stopped accepting), starts accepting on every
   * adopted listener, runs the adopters' post-commit checks and sends serving: the commit. Resolves
   * then. Rejects if the old side aborted (e.g. its deadline passed) or a start failed (the old side is
   * told and accepts again): this process must then stop serving the adopted listeners. If the old side
   * vanished without a word (crash), starts anyway and resolves with confirmed: false. Closes every
   * listener fd that was not taken.
   */
  async ready(): Promise<ReadyResult> {
    if (this.#done) throw new UnixAncillaryError("ERR_UA_CLOSED", "handoff: ready() or abort() was already called");
    this.#done = true;
    this.#closeUnclaimed();
    const deadline = performance.now() + this.#timeoutMs;
    try {
      try {
        this.#chan.send(FrameType.Ready, { pid: process.pid, adopted: [...this.#taken] });
      } catch (e) {
        if (!(e instanceof PeerClosedError) && !(e instanceof SystemError)) throw e;
        // The old side hung up: if it left an abort frame, report it; otherwise it crashed.
      }
      let reply;
      try {
        reply = await this.#chan.recv(deadline, "the old side's confirmation");
      } catch (e) {
        if (e instanceof PeerClosedError) {
          // The old side is gone: nobody else accepts, so we must.
          await this.#startAll();
          return { confirmed: false, oldPid: this.oldPid };
        }
        throw e;
      }
      if (reply.type === FrameType.Abort) throw new UnixAncillaryError(abortCode(reply.payload.code), `handoff: the old side aborted: ${reply.payload.message}`);
      if (reply.type !== FrameType.Done) throw protocolError(`expected done, got frame type ${reply.type}`);
      try {
        await this.#startAll();
      } catch (e) {
        this.#chan.sendAbort("ERR_UA_ABORTED", `the successor could not start accepting: ${(e as Error).message}`);
        throw e;
      }
      try {
        this.#chan.send(FrameType.Serving, { pid: process.pid });
      } catch (e) {
        // The old side died after done: we are the only server now.
        if (e instanceof PeerClosedError || e instanceof SystemError) return { confirmed: false, oldPid: this.oldPid };
        throw e;
      }
      return { confirmed: true, oldPid: this.oldPid };
    } finally {
      this.#forgetDeferrals();
      this.#chan.close();
    }
  }

  /** Gives up: tells the old side (which carries on), closes the channel and every fd not taken. */
  abort(reason = "the upgrader gave up"): void {
    this.#forgetDeferrals();
    this.#starts.length = 0;
    if (!this.#done) {
      this.#done = true;
      this.#chan.sendAbort("ERR_UA_ABORTED", reason);
    }
    this.#closeUnclaimed();
    this.#chan.close();
  }

  [Symbol.dispose](): void {
    this.abort("the upgrader released the handoff without ready()");
  }
  async [Symbol.asyncDispose](): Promise<void> {
    this.abort("the upgrader released the handoff without ready()");
  }
}

function abortCode(code: unknown): "ERR_UA_BUSY" | "ERR_UA_PEER_REJECTED" | "ERR_UA_TIMEOUT" | "ERR_UA_PROTOCOL" | "ERR_UA_ABORTED" {
  switch (code) {
    case "ERR_UA_BUSY":
    case "ERR_UA_PEER_REJECTED":
    case "ERR_UA_TIMEOUT":
    case "ERR_UA_PROTOCOL":
      return code;
    default:
      return "ERR_UA_ABORTED";
  }
}

/**
 * New side: connect to the old process (path, fd, or the inherited $UA_HANDOFF_FD), authenticate it,
 * say hello and receive the offer. Each received fd is checked against its metadata.
 */
export async function requestHandoff(opts: RequestHandoffOptions = {}): Promise<Handoff> {
  if (opts === null || typeof opts !== "object") throw new TypeError("requestHandoff: options must be an object");
  const timeoutMs = intOption("timeoutMs", opts.timeoutMs, 1, MAX_TIMEOUT_MS, 30_000);
  // Each option is read once: a getter must not pass the checks with one value and be used with another
  // (an fd number adopted here is closed by this library later).
  const fdOption = opts.fd;
  const wantOption: unknown = opts.want;
  const pathOption = opts.path;
  if (fdOption !== undefined && !(fdOption instanceof OwnedFd)) intOption("fd", fdOption, 0, 2 ** 31 - 1, 0);
  if (wantOption !== undefined && (!Array.isArray(wantOption) || !wantOption.every((n) => typeof n === "string"))) throw new TypeError("requestHandoff: want must be an array of listener names");
  const want = wantOption === undefined ? undefined : [...(wantOption as string[])];
  const deadline = performance.now() + timeoutMs;
  let sock: UnixSeqpacket;
  if (fdOption !== undefined) {
    if (fdOption instanceof OwnedFd) sock = UnixSeqpacket.fromFd(fdOption);
    else {
      // Check the number before owning it: if it is not a seqpacket socket the caller still owns it.
      const type = sys.getsockoptInt(fdOption, K.SOL_SOCKET, K.SO_TYPE);
      if (type !== K.SOCK_SEQPACKET) throw new UnixAncillaryError("ERR_UA_PROTOCOL", `requestHandoff: fd ${fdOption} is not a SOCK_SEQPACKET socket (SO_TYPE ${type}); it was left open and is still yours`);
      // fromFd also refuses other families (e.g. SCTP's seqpacket sockets): check before owning it, too.
      if (sys.socketDomain(fdOption) !== K.AF_UNIX) throw new UnixAncillaryError("ERR_UA_PROTOCOL", `requestHandoff: fd ${fdOption} is not an AF_UNIX socket; it was left open and is still yours`);
      sock = UnixSeqpacket.fromFd(adopt(fdOption));
    }
  } else if (pathOption !== undefined) {
    sock = UnixSeqpacket.connectSync(pathOption);
  } else {
    const inherited = takeInheritedFd();
    if (inherited) sock = UnixSeqpacket.fromFd(inherited);
    else if (process.env[HANDOFF_PATH_ENV]) sock = UnixSeqpacket.connectSync(process.env[HANDOFF_PATH_ENV]!);
    else throw new UnixAncillaryError("ERR_UA_PROTOCOL", `requestHandoff: no channel (pass path or fd, or start this process with spawnSuccessor, which sets ${HANDOFF_FD_ENV})`);
  }
  const chan = new Channel(sock);
  const received: OwnedFd[] = [];
  try {
    const cred = peerCredentials(sock);
    // The old side's pidfd (SO_PEERPIDFD; null where unsupported, or when we created the socketpair):
    // the process the policy judges by its pid must still be the one that created the control socket.
    const pidfd = pinPeer(sock, cred, "old side");
    try {
      checkPeer(opts.peerPolicy, cred, "old side");
      verifyPeer(pidfd, cred, "old side");
    } finally {
      pidfd?.close();
    }
    let helloLost: PeerClosedError | null = null;
    try {
      chan.send(FrameType.Hello, want ? { pid: process.pid, want } : { pid: process.pid });
    } catch (e) {
      // The old side may refuse (SO_PEERCRED, busy) and close before reading our hello: the hello
      // then fails with EPIPE, but the abort saying why is queued for us. Read it below.
      if (!(e instanceof PeerClosedError)) throw e;
      helloLost = e;
    }
    const offer = await chan.recv(deadline, "the offer", opts.signal, FrameType.Offer);
    received.push(...offer.fds);
    if (offer.type === FrameType.Abort) throw new UnixAncillaryError(abortCode(offer.payload.code), `handoff refused by the old side: ${offer.payload.message}`);
    if (helloLost !== null) throw helloLost;
    if (offer.type !== FrameType.Offer) throw protocolError(`expected offer, got frame type ${offer.type}`);
    const list = offer.payload.listeners as OfferedListener[];
    const map = new Map<string, ReceivedListener>();
    list.forEach((l, i) => {
      const fd = offer.fds[i]!;
      const actual = describeSocket(fd.fd);
      if (!actual || actual.family !== l.family || actual.type !== l.type || actual.port !== l.port || actual.address !== l.address) {
        throw protocolError(`listener "${l.name}": the fd received does not match its metadata (${JSON.stringify(actual)} vs ${JSON.stringify(l)})`);
      }
      sys.setCloexec(fd.fd);
      map.set(l.name, { name: l.name, fd, family: l.family, address: l.address, port: l.port, type: l.type });
    });
    const oldTimeout = typeof offer.payload.timeoutMs === "number" ? (offer.payload.timeoutMs as number) : null;
    return new Handoff(chan, map, cred.pid ?? (offer.payload.pid as number), timeoutMs, oldTimeout);
  } catch (e) {
    closeAll(received);
    if (!(e instanceof UnixAncillaryError && e.message.startsWith("handoff refused"))) {
      chan.sendAbort(e instanceof UnixAncillaryError ? e.code : "ERR_UA_PROTOCOL", (e as Error).message);
    }
    chan.close();
    throw e;
  }
}
