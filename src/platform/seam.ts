/**
 * Test-only injection seam. When the environment variable UNIX_ANCILLARY_FAKE_PLATFORM names a module
 * (absolute path), the platform layer takes the ABI table and the dlopen function from that module's
 * `platformSeam` export instead of detecting the host and loading its libc. test/fake-libc/ uses it to
 * run the library's darwin and FreeBSD code paths on Linux against a fake libc.
 *
 * Read once per thread, at import, before anything is bound; the reactor Worker inherits the
 * environment and so gets the same fake. Unset (always, outside this project's tests) nothing changes.
 * It adds no capability: whoever sets this process's environment can already load code into it
 * (BUN_OPTIONS=--preload, LD_PRELOAD).
 */
import type { FFIFunction } from "bun:ffi";
import type { AbiName } from "./abi.ts";

export const SEAM_ENV = "UNIX_ANCILLARY_FAKE_PLATFORM";

export interface PlatformSeam {
  /** The ABI table to use instead of the detected one. */
  readonly abiName: AbiName;
  /** Stands in for bun:ffi dlopen: returns the functions for `symbols` (throwing if one is missing). */
  dlopen(libName: string, symbols: Record<string, FFIFunction>): { symbols: Record<string, (...args: never[]) => unknown> };
}

const seamPath = process.env[SEAM_ENV] || null;

function load(): PlatformSeam | null {
  const path = seamPath;
  if (path === null) return null;
  if (!path.startsWith("/")) throw new Error(`${SEAM_ENV} must be an absolute module path (got ${JSON.stringify(path)})`);
  const seam = (require(path) as { platformSeam?: PlatformSeam }).platformSeam;
  if (!seam || typeof seam.abiName !== "string" || typeof seam.dlopen !== "function") {
    throw new Error(`${SEAM_ENV}: ${path} does not export a platformSeam { abiName, dlopen }`);
  }
  return seam;
}

/** The injected platform, or null (production). */
export const seam: PlatformSeam | null = load();

/**
 * The import lines that open the reactor Worker's source (a Blob URL module, src/async/reactor-worker.ts):
 * `ffi` is bun:ffi, or, under the seam, bun:ffi with the seam's dlopen, so the Worker's own dlopen
 * reaches the same fake.
 */
export function workerFfiImport(): string {
  if (seam === null) return `import * as ffi from "bun:ffi";\n`;
  return (
    `import * as realFfi from "bun:ffi";\n` +
    `import { platformSeam } from ${JSON.stringify(seamPath)};\n` +
    `const ffi = { ...realFfi, dlopen: (name, symbols) => platformSeam.dlopen(name, symbols) };\n`
  );
}
