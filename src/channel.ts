/**
 * A child process with a connected fd channel: Bun's equivalent of Node's `child.send(message,
 * handle)`. The parent gets one end of a socketpair as a UnixStream (or UnixSeqpacket), the child
 * gets the other end with one call, `channelFromParent()`.
 *
 * Ownership: spawnWithChannel creates both ends. The child's end goes to the child as an inherited
 * fd (`stdio[n]`, its number in $UA_CHANNEL_FD) and the parent's copy of it is closed before the
 * function returns, on success and on every error; the parent's end is returned and is the caller's
 * to close. In the child, channelFromParent() takes ownership of the inherited fd (once: it removes
 * $UA_CHANNEL_FD, so a grandchild does not take a number that is not its own).
 */
import type { Subprocess } from "bun";
import { OwnedFd } from "./owned-fd.ts";
import { UnixSeqpacket, UnixStream } from "./socket.ts";
import { invalidArgType, invalidArgValue, UnixAncillaryError } from "./errors.ts";
import { describe } from "./cmsg/sizes.ts";

/** The environment variable naming the child's channel fd. */
export const CHANNEL_FD_ENV = "UA_CHANNEL_FD";

type SpawnOpts = Bun.SpawnOptions.SpawnOptions<Bun.SpawnOptions.Writable, Bun.SpawnOptions.Readable, Bun.SpawnOptions.Readable>;

/** Options for the channel of spawnWithChannel / channelFromParent. */
export interface ChannelOptions {
  /** Socket type of the channel: "stream" (default, a UnixStream) or "seqpacket" (Linux, FreeBSD). */
  type?: "stream" | "seqpacket";
}

/** What spawnWithChannel returns: the child and your end of the channel (yours to close). */
export interface SpawnedWithChannel<S extends UnixStream | UnixSeqpacket> {
  /** The child, exactly as Bun.spawn returned it. */
  child: Subprocess<Bun.SpawnOptions.Writable, Bun.SpawnOptions.Readable, Bun.SpawnOptions.Readable>;
  /** The parent's end of the channel. Yours: close it (or `using`) when done. */
  channel: S;
}

/**
 * Spawns `cmd` with `Bun.spawn(cmd, options)` (your options unchanged: stdin/stdout/stderr or a stdio
 * array keep their meaning and defaults) plus one extra inherited fd, the child's end of a new
 * socketpair. In the child, `channelFromParent()` returns its end.
 * @throws whatever Bun.spawn throws (e.g. ENOENT); both ends are closed then.
 */
export function spawnWithChannel(cmd: string[], options?: SpawnOpts, channel?: ChannelOptions & { type?: "stream" }): SpawnedWithChannel<UnixStream>;
export function spawnWithChannel(cmd: string[], options: SpawnOpts | undefined, channel: ChannelOptions & { type: "seqpacket" }): SpawnedWithChannel<UnixSeqpacket>;
export function spawnWithChannel(cmd: string[], options: SpawnOpts = {}, channel: ChannelOptions = {}): SpawnedWithChannel<UnixStream | UnixSeqpacket> {
  if (!Array.isArray(cmd) || cmd.length === 0) throw invalidArgType("cmd", "a non-empty array of strings", describe(cmd));
  if (options === null || typeof options !== "object") throw invalidArgType("options", "an object (Bun.spawn options)", describe(options));
  const type = channel.type ?? "stream";
  if (type !== "stream" && type !== "seqpacket") throw invalidArgValue("channel.type", `must be "stream" or "seqpacket", received ${describe(type)}`);
  const [mine, theirs] = type === "stream" ? UnixStream.pair() : UnixSeqpacket.pair();
  try {
    const { stdin, stdout, stderr, stdio, env, ...rest } = options as SpawnOpts & { stdio?: unknown[] };
    // Bun.spawn's defaults, spelled out because passing `stdio` replaces them.
    const base: unknown[] = Array.isArray(stdio) ? [...stdio] : [stdin ?? "ignore", stdout ?? "pipe", stderr ?? "inherit"];
    while (base.length < 3) base.push([undefined, "pipe", "inherit"][base.length] ?? "inherit");
    const index = base.length;
    base.push(theirs.fd);
    const child = Bun.spawn(cmd, {
      ...rest,
      stdio: base as never,
      env: { ...(env ?? process.env), [CHANNEL_FD_ENV]: String(index) },
    } as never) as SpawnedWithChannel<UnixStream>["child"];
    return { child, channel: mine };
  } catch (e) {
    mine.close();
    throw e;
  } finally {
    theirs.close(); // the child has its own copy (or was never started)
  }
}

/**
 * In a child started by spawnWithChannel: its end of the channel (a UnixStream, or a UnixSeqpacket
 * if the parent asked for one; the socket's type is checked). Takes ownership of the fd once.
 * @throws UnixAncillaryError ERR_UA_CLOSED if there is no channel ($UA_CHANNEL_FD unset: not started
 *   by spawnWithChannel, or already taken), SystemError EBADF if the fd is not open.
 */
export function channelFromParent(): UnixStream;
export function channelFromParent(options: { type: "seqpacket" }): UnixSeqpacket;
export function channelFromParent(options: ChannelOptions = {}): UnixStream | UnixSeqpacket {
  const raw = process.env[CHANNEL_FD_ENV];
  if (raw === undefined) throw new UnixAncillaryError("ERR_UA_CLOSED", `no channel from the parent: $${CHANNEL_FD_ENV} is not set (start this process with spawnWithChannel; the channel can be taken once)`);
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n)) throw invalidArgValue(`$${CHANNEL_FD_ENV}`, `must be an fd number, received ${JSON.stringify(raw)}`);
  const owned = OwnedFd.from(n);
  delete process.env[CHANNEL_FD_ENV];
  try {
    return options.type === "seqpacket" ? UnixSeqpacket.fromFd(owned) : UnixStream.fromFd(owned);
  } catch (e) {
    owned.close();
    throw e;
  }
}
