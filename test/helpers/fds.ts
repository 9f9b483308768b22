/**
 * Test helpers for counting open fds. The fd table is process-wide and bun test runs files one after
 * another in one process, so a test takes its baseline, does its work, and compares — with nothing
 * async of its own still running in between.
 */
import { readdirSync, readlinkSync } from "node:fs";

/** Open fd numbers of this process (from /proc/self/fd, minus the fd readdir itself used). */
export function openFds(): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc/self/fd")) {
    const n = Number(name);
    try {
      readlinkSync(`/proc/self/fd/${n}`);
      out.push(n);
    } catch {
      // the directory fd readdir used, already closed
    }
  }
  return out.sort((a, b) => a - b);
}

export function countOpenFds(): number {
  return openFds().length;
}

/** What an fd number points at ("pipe:[123]", "/dev/null", ...), or null if closed. */
export function fdTarget(fd: number): string | null {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
}

/**
 * Runs `body` and asserts the number of open fds afterwards equals the count before (plus `delta`).
 * Returns what body returned. Gives pending finalizers no chance to hide a leak: nothing here calls GC.
 */
export async function expectNoFdLeak<T>(body: () => T | Promise<T>, delta = 0): Promise<T> {
  const before = openFds();
  const result = await body();
  const after = openFds();
  if (after.length !== before.length + delta) {
    const extra = after.filter((fd) => !before.includes(fd)).map((fd) => `${fd}=${fdTarget(fd)}`);
    const gone = before.filter((fd) => !after.includes(fd));
    throw new Error(`fd count changed by ${after.length - before.length} (expected ${delta}); new: [${extra.join(", ")}] gone: [${gone.join(", ")}]`);
  }
  return result;
}
