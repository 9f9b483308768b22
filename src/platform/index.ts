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
import { setErrnoNames } from "../errors.ts";

export const ABIS: Partial<Record<AbiName, Abi>> = {
  "linux-x64-gnu": linuxX64Gnu,
  "linux-x64-musl": linuxX64Musl,
  "linux-arm64-gnu": linuxArm64Gnu,
  "linux-arm64-musl": linuxArm64Musl,
};

function select(): Abi {
  const name = detectAbiName();
  const table = ABIS[name];
  if (!table) throw new Error(`unix-ancillary: no ABI table for ${name}`);
  return table;
}

export const abi: Abi = select();
export const K = abi.constants;
setErrnoNames(new Map(Object.entries(abi.errno).map(([name, n]) => [n, name])));

export type { Abi, AbiName } from "./abi.ts";
export { detectAbiName, UnsupportedPlatformError } from "./detect.ts";
