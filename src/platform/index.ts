/**
 * The running process's ABI table, chosen once at import. An unsupported platform fails here, at
 * import, with UnsupportedPlatformError (code ERR_UA_UNSUPPORTED). Tests can substitute another
 * ABI and a fake libc through seam.ts.
 */
import type { Abi, AbiName } from "./abi.ts";
import { detectAbiName } from "./detect.ts";
import { setErrnoNames } from "../errors.ts";
import { seam } from "./seam.ts";

// Only the running ABI's table is loaded at import (each table module costs load time; measured in
// bench/startup.ts). Static require()s: synchronous, cached, and visible to bundlers.
const LOADERS: Readonly<Record<AbiName, () => Abi>> = {
  "linux-x64-gnu": () => require("./linux-x64-gnu.ts").abi,
  "linux-x64-musl": () => require("./linux-x64-musl.ts").abi,
  "linux-arm64-gnu": () => require("./linux-arm64-gnu.ts").abi,
  "linux-arm64-musl": () => require("./linux-arm64-musl.ts").abi,
  "darwin-x64": () => require("./darwin-x64.ts").abi,
  "darwin-arm64": () => require("./darwin-arm64.ts").abi,
  "freebsd-x64": () => require("./freebsd-x64.ts").abi,
};

/** Every ABI table, each loaded on first access (tests and tools; the library itself uses `abi`). */
export const ABIS: Readonly<Record<AbiName, Abi>> = Object.freeze(
  Object.defineProperties(
    {} as Record<AbiName, Abi>,
    Object.fromEntries(Object.entries(LOADERS).map(([name, load]) => [name, { get: load, enumerable: true }])),
  ),
);

function select(): Abi {
  const name = seam !== null ? seam.abiName : detectAbiName();
  return LOADERS[name]();
}

/** The ABI table selected for this process (OS, arch, libc): constants, struct layouts, limits. Exported as `platform`. */
export const abi: Abi = select();
export const K = abi.constants;
setErrnoNames(new Map(Object.entries(abi.errnoNames).map(([n, name]) => [Number(n), name])));

export type { Abi, AbiName } from "./abi.ts";
export { detectAbiName, UnsupportedPlatformError } from "./detect.ts";
