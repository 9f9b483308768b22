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

// test/fake-libc.test.ts preloads this module so the check applies to every test of the suite it runs
// (registered from a suite's own import, Bun would attach it to the first importing file only).
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
