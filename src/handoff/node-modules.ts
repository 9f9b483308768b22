/**
 * node:http and node:net on first use. Loading them costs about 20 ms of start-up (docs/startup.md),
 * and a process that hands over or adopts a Bun.serve server never needs them. A caller that passes
 * a node server object has loaded them already, so the checks below load nothing new for it: an
 * object is only tested with instanceof once it has a node server's methods.
 *
 * Ownership: nothing here touches fds.
 */
import type * as Http from "node:http";
import type * as Net from "node:net";

let httpModule: typeof Http | null = null;
let netModule: typeof Net | null = null;

export function nodeHttp(): typeof Http {
  return (httpModule ??= require("node:http") as typeof Http);
}

export function nodeNet(): typeof Net {
  return (netModule ??= require("node:net") as typeof Net);
}

function looksLikeNodeServer(x: unknown): boolean {
  return typeof x === "object" && x !== null && typeof (x as { listen?: unknown }).listen === "function" && typeof (x as { address?: unknown }).address === "function";
}

/** A net.Server (on Bun an http.Server is not one: test both where both are meant). */
export function isNetServer(x: unknown): x is Net.Server {
  return looksLikeNodeServer(x) && x instanceof nodeNet().Server;
}

export function isHttpServer(x: unknown): x is Http.Server {
  return looksLikeNodeServer(x) && x instanceof nodeHttp().Server;
}
