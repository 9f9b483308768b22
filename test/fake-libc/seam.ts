/**
 * The module UNIX_ANCILLARY_FAKE_PLATFORM points at (src/platform/seam.ts): picks the fake ABI from
 * UA_FAKE_ABI (darwin-x64 | darwin-arm64 | freebsd-x64) and hands the library a fake libc backed by one
 * Kernel per thread. Suites reach this thread's kernel with fakeKernel().
 */
import type { FFIFunction } from "bun:ffi";
import type { AbiName } from "../../src/platform/abi.ts";
import { FAKE_ABIS, Kernel, fakeDlopen } from "./kernel.ts";

const KEY = Symbol.for("unix-ancillary.fake-kernel");

function abiName(): AbiName {
  const name = process.env.UA_FAKE_ABI as AbiName | undefined;
  if (!name || !FAKE_ABIS[name]) throw new Error(`UA_FAKE_ABI must be one of ${Object.keys(FAKE_ABIS).join(", ")} (got ${name})`);
  return name;
}

export function fakeKernel(): Kernel {
  const g = globalThis as unknown as Record<symbol, Kernel | undefined>;
  return (g[KEY] ??= new Kernel(FAKE_ABIS[abiName()]!));
}

export const platformSeam = {
  abiName: abiName(),
  dlopen(libName: string, symbols: Record<string, FFIFunction>) {
    return fakeDlopen(fakeKernel(), libName, symbols);
  },
};
