/**
 * Allocation proof for the public sync hot path (benchmark code, not part of the library).
 *
 * Method (bun:jsc heapStats().objectTypeCounts counts every cell on the heap, including garbage that
 * has not been swept yet):
 *   1. warm up (JIT tiers, lazily created scratch buffers), then Bun.gc(true) and snapshot A;
 *   2. run `iterations` round trips "send 1 byte + N fds, receive them, close them";
 *   3. snapshot B immediately (no GC): B - A = objects allocated by the loop that are still on the heap;
 *   4. Bun.gc(true) and snapshot C: C - A = objects the loop left alive (should be ~0: a leak otherwise).
 *
 * Received OwnedFd objects are plain class instances, which JSC counts under "Object"; they are the
 * product itself (one per received fd) and serve as the positive control: if B - A for "Object" is at
 * least the number of OwnedFds created, no GC ran during the loop, so a zero typed-array delta in
 * B - A really means "no typed arrays were allocated". If a GC did run (`gcDuringLoop`), B - A is a
 * lower bound only.
 *
 * Exported for a test: `measureAllocations()` returns the deltas; the bench prints them.
 */
import { heapStats } from "bun:jsc";
import { closeSync, openSync, readdirSync } from "node:fs";
import { UnixStream } from "../src/index.ts";

/** Types reported. The first five are the "buffer" types the hot path must not allocate per call. */
export const BUFFER_TYPES = ["Uint8Array", "ArrayBuffer", "DataView", "Int32Array", "Uint32Array"] as const;
export const OTHER_TYPES = ["Array", "Function", "Object", "string"] as const;
const TYPES = [...BUFFER_TYPES, ...OTHER_TYPES] as const;
export type CountedType = (typeof TYPES)[number];
export type TypeDeltas = Record<CountedType, number>;

export type AllocVariant = "recvFdsIntoSync" | "recvFdsSync";

export interface AllocOptions {
  /** Round trips measured (default 10,000). */
  iterations?: number;
  /** Round trips run before measuring (default 2,000). */
  warmup?: number;
  /** Fds per message (default 1). */
  nfds?: number;
  /** Receive API: the bring-your-own-buffer one (default) or the allocating one (a positive control). */
  variant?: AllocVariant;
}

export interface AllocReport {
  variant: AllocVariant;
  nfds: number;
  iterations: number;
  /** OwnedFd objects the loop received (and closed): iterations * nfds. */
  ownedFdCreated: number;
  /** Allocated by the loop and still on the heap right after it (no GC): per-call allocations show here. */
  allocated: TypeDeltas;
  /** Still alive after Bun.gc(true): anything non-zero here is retained (a leak). */
  retained: TypeDeltas;
  /** allocated / iterations, per type. */
  allocatedPerCall: TypeDeltas;
  /** True when the "Object" delta is below ownedFdCreated: a GC ran during the loop, `allocated` is a lower bound. */
  gcDuringLoop: boolean;
  /** heapSize (bytes) growth: right after the loop, and after a full GC. */
  heapSizeGrowthNoGc: number;
  heapSizeGrowth: number;
  /** Open fds (from /proc/self/fd) after minus before the whole check (sockets and /dev/null included). */
  fdDelta: number;
}

function snapshot(): { counts: TypeDeltas; heapSize: number } {
  const s = heapStats();
  const c = s.objectTypeCounts as Record<string, number>;
  const counts = {} as TypeDeltas;
  for (const t of TYPES) counts[t] = c[t] ?? 0;
  return { counts, heapSize: s.heapSize };
}

function diff(a: TypeDeltas, b: TypeDeltas): TypeDeltas {
  const d = {} as TypeDeltas;
  for (const t of TYPES) d[t] = b[t] - a[t];
  return d;
}

/** Number of open fds of this process, or -1 where /proc/self/fd does not exist. */
export function openFdCount(): number {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return -1;
  }
}

export function measureAllocations(opts: AllocOptions = {}): AllocReport {
  const iterations = opts.iterations ?? 10_000;
  const warmup = opts.warmup ?? 2_000;
  const nfds = opts.nfds ?? 1;
  const variant = opts.variant ?? "recvFdsIntoSync";

  const devnull = openSync("/dev/null", "r");
  const [a, b] = UnixStream.pair();
  try {
    const one = new Uint8Array([0x78]);
    const buf = new Uint8Array(1);
    const fds: number[] = new Array(nfds).fill(devnull);
    let received = 0;

    // One loop body per variant, hoisted so the measured loop only contains library calls.
    const into = (n: number): void => {
      for (let i = 0; i < n; i++) {
        a.sendFdsSync(one, fds);
        using r = b.recvFdsIntoSync(nfds, buf);
        received += r.fds.length;
      }
    };
    const alloc = (n: number): void => {
      for (let i = 0; i < n; i++) {
        a.sendFdsSync(one, fds);
        using r = b.recvFdsSync(nfds);
        received += r.fds.length;
      }
    };
    const body = variant === "recvFdsSync" ? alloc : into;

    body(warmup);
    Bun.gc(true);
    Bun.gc(true);
    received = 0;
    const before = snapshot();
    body(iterations);
    const after = snapshot();
    Bun.gc(true);
    Bun.gc(true);
    const settled = snapshot();

    if (received !== iterations * nfds) throw new Error(`alloc-check: received ${received} fds, expected ${iterations * nfds}`);
    const allocated = diff(before.counts, after.counts);
    const allocatedPerCall = {} as TypeDeltas;
    for (const t of TYPES) allocatedPerCall[t] = allocated[t] / iterations;
    return {
      variant,
      nfds,
      iterations,
      ownedFdCreated: received,
      allocated,
      retained: diff(before.counts, settled.counts),
      allocatedPerCall,
      gcDuringLoop: allocated.Object < received,
      heapSizeGrowthNoGc: after.heapSize - before.heapSize,
      heapSizeGrowth: settled.heapSize - before.heapSize,
      fdDelta: 0,
    };
  } finally {
    a.close();
    b.close();
    closeSync(devnull);
  }
}

/** measureAllocations plus the fd count check around it (fdDelta filled in). */
export function checkAllocations(opts: AllocOptions = {}): AllocReport {
  const before = openFdCount();
  const report = measureAllocations(opts);
  report.fdDelta = openFdCount() - before;
  return report;
}
