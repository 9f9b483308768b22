/**
 * Shared by the fake-libc suites: this thread's fake kernel, a violation check after every test, and
 * fd accounting in the fake's own fd table (only fds the fake created exist there, so counting it is
 * exact and cannot be disturbed by the host process).
 */
import { afterEach, expect } from "bun:test";
import { fakeKernel } from "./seam.ts";
import type { Kernel } from "./kernel.ts";

export const k: Kernel = fakeKernel();
export const abiName = k.abi.name;
export const isDarwin = k.abi.os === "darwin";

// Registered when a suite first imports this module: Bun attaches it to that file only, which is why
// test/fake-libc.test.ts runs every suite file in its own process.
afterEach(() => {
  const v = k.violations.splice(0);
  expect(v).toEqual([]);
});

/** Opens `n` fake files for a test; returns their numbers. */
export function files(n: number, name = "f"): number[] {
  return Array.from({ length: n }, (_, i) => k.openFile(`${name}${i}`));
}

export function closeRaw(...fds: number[]): void {
  for (const fd of fds) expect(k.impl.close!(fd)).toBe(0);
}

/** Asserts the fake's fd table is exactly `baseline` again (nothing leaked, nothing closed twice). */
export function expectFds(baseline: number[]): void {
  expect(k.openFds()).toEqual(baseline);
}
