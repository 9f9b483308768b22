/**
 * The fd behind the objects Bun and Node programs hold, for every API that takes an FdLike:
 * net.Server / net.Socket / http.Server (their `_handle.fd`), and a Bun.serve server (which exposes
 * no fd: its listening socket is found by address, the way the handoff module does it). Objects with
 * a numeric `fd` (Bun.listen listeners, Bun.connect sockets, fs/promises FileHandle) never get here.
 *
 * Ownership: nothing is taken. The number is the object's own fd, lent for the duration of the call,
 * like any FdLike; the object stays the caller's.
 */
import { invalidArgValue } from "./errors.ts";

/** The fd `x` holds, null if `x` is none of the known kinds. Throws if it is one but has no fd now. */
export function heldFd(x: unknown, name: string): number | null {
  if (x === null || typeof x !== "object") return null;
  const o = x as Record<string, unknown>;
  const handle = o._handle as { fd?: unknown } | null | undefined;
  if (handle !== null && typeof handle === "object" && typeof handle.fd === "number" && Number.isInteger(handle.fd) && handle.fd >= 0) return handle.fd;
  const isBunServer = typeof o.fetch === "function" && typeof o.stop === "function" && ("port" in o || "url" in o);
  if (!isBunServer) return null;
  // Loaded on first use: it brings node:net and node:http, which importing the library must not cost.
  const { resolveSource } = require("./handoff/sources.ts") as typeof import("./handoff/sources.ts");
  try {
    return resolveSource(name, x as never).fd;
  } catch (e) {
    throw invalidArgValue(name, `is a Bun.serve server whose listening socket was not found (${(e as Error).message}); is it still listening?`);
  }
}
