/**
 * node:fs on first use. Its first import costs 4-6 ms of start-up (docs/startup.md), and the library
 * needs it only off the hot paths: listing /proc/self/fd, the handoff's control socket file and
 * /proc/self/fdinfo reads, a socket file's identity. Owns no fds.
 */
import type * as Fs from "node:fs";

let fs: typeof Fs | null = null;

export function nodeFs(): typeof Fs {
  return (fs ??= require("node:fs") as typeof Fs);
}
