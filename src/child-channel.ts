/**
 * A child process with a connected fd channel: the Bun counterpart of Node's `child.send(msg, handle)`.
 *
 * Ownership contract: `spawnWithChannel` makes a socket pair, hands one end to the child as an inherited
 * fd and closes the parent's copy of that end before it returns, on success and on every error; the
 * other end is returned as a socket the caller owns. In the child, `parentChannel()` takes the inherited
 * fd once (marking it close-on-exec so grandchildren do not inherit it) and returns it as a socket the
 * child owns.
 */
import type { SpawnOptions, Subprocess } from "bun";
import { OwnedFd } from "./owned-fd.ts";
import { UnixSeqpacket, UnixStream } from "./socket.ts";
import { UnixAncillaryError, invalidArgType, invalidArgValue } from "./errors.ts";
import { describe } from "./cmsg/sizes.ts";
import { setCloexec } from "./sys.ts";

/** Environment variable naming the inherited channel in the child: `<fd>:<stream|seqpacket>`. */
export const CHANNEL_ENV = "UNIX_ANCILLARY_CHANNEL";

export type ChannelKind = "stream" | "seqpacket";
type ChannelOf<K extends ChannelKind> = K extends "seqpacket" ? UnixSeqpacket : UnixStream;

export type SpawnWithChannelOptions<K extends ChannelKind = "stream"> = SpawnOptions.SpawnOptions<
  SpawnOptions.Writable,
  SpawnOptions.Readable,
  SpawnOptions.Readable
> & {
  /** Socket type of the channel: "stream" (default, a byte stream) or "seqpacket" (message boundaries kept). */
  channel?: K;
};

export interface ChildWithChannel<K extends ChannelKind = "stream"> {
  /** The child process, exactly as `Bun.spawn` returned it. */
  readonly process: Subprocess;
  /** The parent's end of the channel (owned by the caller: close it when done). */
  readonly channel: ChannelOf<K>;
}

const DEFAULT_STDIO = ["ignore", "pipe", "inherit"] as const;

/**
 * Spawns `cmd` with `Bun.spawn(cmd, options)` plus one extra inherited fd: the child's end of a connected
 * Unix socket pair. The child gets it with `parentChannel()`; the parent gets the other end as
 * `channel`. `options` are passed to `Bun.spawn` unchanged, except that the channel is appended to
 * `stdio` and named in the child's environment.
 *
 * @throws ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE for a bad `cmd` or `channel`; whatever
 *   `Bun.spawn` throws (after closing both ends of the pair).
 */
export function spawnWithChannel<K extends ChannelKind = "stream">(cmd: readonly string[], options?: SpawnWithChannelOptions<K>): ChildWithChannel<K> {
  if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((a) => typeof a === "string")) {
    throw invalidArgType("cmd", "a non-empty array of strings", describe(cmd));
  }
  const kind: unknown = options?.channel ?? "stream";
  if (kind !== "stream" && kind !== "seqpacket") throw invalidArgValue("options.channel", `must be "stream" or "seqpacket". Received ${describe(kind)}`);
  const { channel: _omit, ...spawnOptions } = options ?? {};

  const base = spawnOptions.stdio ?? [spawnOptions.stdin ?? DEFAULT_STDIO[0], spawnOptions.stdout ?? DEFAULT_STDIO[1], spawnOptions.stderr ?? DEFAULT_STDIO[2]];
  const stdio: unknown[] = [...base];
  while (stdio.length < 3) stdio.push(DEFAULT_STDIO[stdio.length]);
  const childFd = stdio.length;

  const [mine, theirs] = kind === "seqpacket" ? UnixSeqpacket.pair() : UnixStream.pair();
  let proc: Subprocess;
  try {
    stdio.push(theirs.fd);
    const env = { ...(spawnOptions.env ?? process.env), [CHANNEL_ENV]: `${childFd}:${kind}` };
    proc = Bun.spawn([...cmd], { ...spawnOptions, stdio, env } as unknown as Parameters<typeof Bun.spawn>[1]);
  } catch (e) {
    mine.close();
    throw e;
  } finally {
    theirs.close(); // the child has its own copy now (or there is no child)
  }
  return { process: proc, channel: mine as ChannelOf<K> };
}

let taken = false;

/**
 * In a child started by `spawnWithChannel`: the child's end of the channel, as a socket the caller owns.
 * Takes it once: the environment variable is removed and the fd made close-on-exec, so processes this
 * child spawns do not inherit it.
 *
 * @throws ERR_UA_PROTOCOL if this process was not started with a channel, or the channel was already taken.
 */
export function parentChannel(): UnixStream | UnixSeqpacket {
  const spec = process.env[CHANNEL_ENV];
  if (spec === undefined) {
    throw new UnixAncillaryError(
      "ERR_UA_PROTOCOL",
      taken ? "parentChannel(): the channel was already taken by an earlier call" : `parentChannel(): no channel: this process was not started by spawnWithChannel() (${CHANNEL_ENV} is not set)`,
    );
  }
  const m = /^(\d{1,9}):(stream|seqpacket)$/.exec(spec);
  if (m === null) throw new UnixAncillaryError("ERR_UA_PROTOCOL", `parentChannel(): malformed ${CHANNEL_ENV}=${JSON.stringify(spec)} (expected "<fd>:<stream|seqpacket>")`);
  delete process.env[CHANNEL_ENV];
  taken = true;
  const fd = Number(m[1]);
  const owned = OwnedFd.from(fd);
  try {
    setCloexec(fd);
    return m[2] === "seqpacket" ? UnixSeqpacket.fromFd(owned) : UnixStream.fromFd(owned);
  } catch (e) {
    owned.close();
    throw e;
  }
}
