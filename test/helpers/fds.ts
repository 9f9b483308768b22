/**
 * Test helpers for counting open fds.
 *
 * The fd table is process-wide and `bun test` runs every file in one process, so fds that earlier tests
 * (or Bun itself: child-process pipes, pidfds, finalizers) close late can disappear at any moment. A
 * count of the whole table therefore depends on test order. These helpers compare *identities*
 * instead: a snapshot maps each open fd number to what it points at ("socket:[123]"), and a test asserts
 * only on fds that are open now but were not open (as the same object) when it took its snapshot — the
 * fds its own work created. Fds that vanished meanwhile are ignored; a test that must prove a specific
 * fd stayed open (a sent fd stays the caller's) checks that fd with `fdTarget`.
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

/** What an fd number points at ("pipe:[123]", "/dev/null", ...), or null if closed. */
export function fdTarget(fd: number): string | null {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
}

/** fd number → target, taken at one moment. */
export type FdSnapshot = ReadonlyMap<number, string>;

export function fdSnapshot(): FdSnapshot {
  const map = new Map<number, string>();
  for (const fd of openFds()) {
    const target = fdTarget(fd);
    if (target !== null) map.set(fd, target);
  }
  return map;
}

/** Fds open now that were not open as the same object in `snap`, as "fd=target" strings. */
export function newFdsSince(snap: FdSnapshot): string[] {
  const out: string[] = [];
  for (const fd of openFds()) {
    const target = fdTarget(fd);
    if (target !== null && snap.get(fd) !== target) out.push(`${fd}=${target}`);
  }
  return out;
}

/** Asserts that exactly `count` fds were created since `snap` and are still open. */
export function expectNewFds(snap: FdSnapshot, count: number): void {
  const created = newFdsSince(snap);
  if (created.length !== count) {
    throw new Error(`expected ${count} new open fd(s) since the snapshot, found ${created.length}: [${created.join(", ")}]`);
  }
}

/** Asserts that no fd created since `snap` is still open. */
export function expectNoNewFds(snap: FdSnapshot): void {
  expectNewFds(snap, 0);
}

/**
 * Runs `body` and asserts that afterwards exactly `delta` fds it created are still open (0: nothing
 * leaked). Returns what body returned. Gives pending finalizers no chance to hide a leak: nothing here
 * calls GC.
 */
export async function expectNoFdLeak<T>(body: () => T | Promise<T>, delta = 0): Promise<T> {
  const snap = fdSnapshot();
  const result = await body();
  expectNewFds(snap, delta);
  return result;
}
