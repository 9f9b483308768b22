/**
 * The running process's ABI table, chosen once at import. An unsupported platform fails here, at
 * import, with UnsupportedPlatformError (code ERR_UA_UNSUPPORTED).
 */
import type { Abi, AbiName } from "./abi.ts";
import { detectAbiName } from "./detect.ts";
import { abi as linuxX64Gnu } from "./linux-x64-gnu.ts";
import { abi as linuxX64Musl } from "./linux-x64-musl.ts";
import { abi as linuxArm64Gnu } from "./linux-arm64-gnu.ts";
import { abi as linuxArm64Musl } from "./linux-arm64-musl.ts";
import { abi as darwinX64 } from "./darwin-x64.ts";
import { abi as darwinArm64 } from "./darwin-arm64.ts";
import { abi as freebsdX64 } from "./freebsd-x64.ts";
import { setErrnoNames } from "../errors.ts";

export const ABIS: Readonly<Record<AbiName, Abi>> = {
  "linux-x64-gnu": linuxX64Gnu,
  "linux-x64-musl": linuxX64Musl,
  "linux-arm64-gnu": linuxArm64Gnu,
  "linux-arm64-musl": linuxArm64Musl,
  "darwin-x64": darwinX64,
  "darwin-arm64": darwinArm64,
  "freebsd-x64": freebsdX64,
};

function select(): Abi {
  const name = detectAbiName();
  return ABIS[name];
}

/** The ABI table selected for this process (OS, arch, libc): constants, struct layouts, limits. Exported as `platform`. */
export const abi: Abi = select();
export const K = abi.constants;
setErrnoNames(new Map(Object.entries(abi.errno).map(([name, n]) => [n, name])));

export type { Abi, AbiName } from "./abi.ts";
export { detectAbiName, UnsupportedPlatformError } from "./detect.ts";
