/**
 * Round-trip benchmark: "send 1 byte + N fds on a socketpair, receive them, close them".
 *
 *   bun bench/roundtrip.ts           full run (~35 s on a 2-vCPU VM)
 *   bun bench/roundtrip.ts --quick   CI smoke run (< 10 s)
 *
 * Variants, measured in the same process. A round runs each fd-count group's variants back to back
 * (order shuffled every round) for a few milliseconds each; a group's ratio is the median over 301
 * rounds of the per-round ratio, so it compares measurements taken milliseconds apart (the speed of a
 * shared VM drifts over seconds; longer windows gave per-round ratios from 0.6 to 1.9).
 *   - public   the library: a.sendFdsSync(one, fds); r = b.recvFdsIntoSync(N, buf); close the fds
 *              (1 fd: r.fds[0].close(), as the raw loop closes its fd; N fds: `using r`)
 *   - using    1 fd only: the same plus `using r` disposal (what the syntax costs on top)
 *   - alloc    the allocating receive: b.recvFdsSync(1) (1 fd only)
 *   - raw-ffi  its own dlopen + preallocated msghdrs + ptr numbers + libc close (bench/raw-ffi.ts)
 *   - C        bench/c/roundtrip.c, gcc -O2, run as a subprocess (skipped without cc/gcc)
 * Then a cost breakdown of the public path, the allocation proof (bench/alloc-check.ts) and an fd
 * leak check. See bench/README.md for what each number means.
 */
import { Bench } from "tinybench";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { UnixStream } from "../src/index.ts";
import { abi } from "../src/platform/index.ts";
import { adopt } from "../src/owned-fd.ts";
import { RawRoundTrip, rawClose, rawSocketpair } from "./raw-ffi.ts";
import { checkAllocations, BUFFER_TYPES, type AllocReport } from "./alloc-check.ts";
import { printGoals, type GoalRow } from "./goals.ts";

const QUICK = process.argv.includes("--quick");
const CFG = QUICK
  ? { rounds: 61, taskMs: 4, cMs: 4, breakdownRounds: 31, breakdownMs: 4, allocIters: 10_000 }
  : { rounds: 301, taskMs: 4, cMs: 4, breakdownRounds: 151, breakdownMs: 4, allocIters: 10_000 };
const MAX = abi.maxFdsPerSend; // 253 on Linux glibc, 252 on musl (sendmsg control-data cap)
const GROUPS = [1, 16, MAX] as const;
/** Round trips per tinybench sample: amortises the timer (~30-40 ns per performance.now() here). */
const batchFor = (n: number): number => (n === 1 ? 64 : n <= 16 ? 16 : 2);

const t0 = performance.now();

// ---------------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------------

const c = buildC();
// Bun creates its own fds lazily (an epoll + eventfd pair on the first spawnSync, more on first use of
// other subsystems), so the fd baseline is taken after one short C run has paid for those.
if ("exe" in c) Bun.spawnSync([c.exe, "1", "1", "1"], { stdout: "ignore", stderr: "ignore" });
process.stderr.write(""); // process.stderr opens its own fd on first use (progress lines go there)
const fdsAtStart = openFdTargets();
const devnull = openSync("/dev/null", "r"); // opened once; every message sends copies of this fd
const one = new Uint8Array([0x78]); // the 1 data byte
const buf = new Uint8Array(1); // receive buffer for the bring-your-own-buffer API
const fdLists = new Map<number, number[]>(GROUPS.map((n) => [n, new Array<number>(n).fill(devnull)]));
const fds1 = fdLists.get(1)!;

const pairs: UnixStream[] = [];
function pair(): [UnixStream, UnixStream] {
  const p = UnixStream.pair();
  pairs.push(...p);
  return p;
}
const rawFds: number[] = [];
function rawPair(): [number, number] {
  const p = rawSocketpair();
  rawFds.push(...p);
  return p;
}

/**
 * One variant: runs its loop body `times` times. Every variant has its own loop, so each loop's call
 * sites see one receiver and one callee (a shared `for (...) op()` loop would make its call site
 * polymorphic across all variants, and which variant that penalises depends on JIT history).
 */
type Op = (times: number) => void;

/** Open fds of this process and what they point at (the fd readdir itself used is dropped). */
function openFdTargets(): Map<number, string> {
  const m = new Map<number, string>();
  for (const name of readdirSync("/proc/self/fd")) {
    try {
      m.set(Number(name), readlinkSync(`/proc/self/fd/${name}`));
    } catch {
      // readdir's own directory fd, already closed
    }
  }
  return m;
}

/** The public API, 1 fd, into the caller's buffer: exactly the brief's loop body (fd list hoisted). */
function publicInto1(): Op {
  const [a, b] = pair();
  return (times) => {
    for (let i = 0; i < times; i++) {
      a.sendFdsSync(one, fds1);
      const r = b.recvFdsIntoSync(1, buf);
      if (r.bytesRead !== 1 || r.fds.length !== 1) throw new Error("public: bad receive");
      r.fds[0]!.close();
    }
  };
}

/**
 * The same with `using` disposal on top of the explicit close. Bun lowers `using` to a helper that
 * allocates a disposal stack per scope, so this row shows what the syntax itself costs.
 */
function publicUsing1(): Op {
  const [a, b] = pair();
  return (times) => {
    for (let i = 0; i < times; i++) {
      a.sendFdsSync(one, fds1);
      using r = b.recvFdsIntoSync(1, buf);
      if (r.bytesRead !== 1 || r.fds.length !== 1) throw new Error("public: bad receive");
      r.fds[0]!.close();
    }
  };
}

/** The public API, allocating receive (copies the payload out of the 4 KiB scratch buffer). */
function publicAlloc1(): Op {
  const [a, b] = pair();
  return (times) => {
    for (let i = 0; i < times; i++) {
      a.sendFdsSync(one, fds1);
      const r = b.recvFdsSync(1);
      if (r.data.length !== 1 || r.fds.length !== 1) throw new Error("public alloc: bad receive");
      r.fds[0]!.close();
    }
  };
}

/** The public API, N fds; `using` closes them all on scope exit. */
function publicIntoN(n: number): Op {
  const [a, b] = pair();
  const list = fdLists.get(n)!;
  return (times) => {
    for (let i = 0; i < times; i++) {
      a.sendFdsSync(one, list);
      using r = b.recvFdsIntoSync(n, buf);
      if (r.bytesRead !== 1 || r.fds.length !== n) throw new Error("public: bad receive");
    }
  };
}

function raw(n: number): Op {
  const [a, b] = rawPair();
  const rt = new RawRoundTrip(n, devnull);
  return (times) => {
    for (let i = 0; i < times; i++) {
      rt.send(a);
      if (rt.recvClose(b) !== n) throw new Error("raw: bad receive");
    }
  };
}

// Breakdown halves (1 fd): one side through the library, the other through the raw baseline.
function publicSendRawRecv(): Op {
  const [a, b] = pair();
  const rt = new RawRoundTrip(1, devnull);
  const fa = a.fd, fb = b.fd;
  return (times) => {
    for (let i = 0; i < times; i++) {
      a.sendFdsSync(one, fds1);
      if (rt.recvClose(fb) !== 1) throw new Error("bad receive");
      void fa;
    }
  };
}
function rawSendPublicRecv(): Op {
  const [a, b] = pair();
  const rt = new RawRoundTrip(1, devnull);
  const fa = a.fd;
  return (times) => {
    for (let i = 0; i < times; i++) {
      rt.send(fa);
      const r = b.recvFdsIntoSync(1, buf);
      if (r.fds.length !== 1) throw new Error("bad receive");
      r.fds[0]!.close();
    }
  };
}
// Per-fd ownership cost: both close an fd number that is not open (EBADF: same cheap syscall).
const BAD_FD = 999_999;
const rawCloseBad: Op = (times) => {
  for (let i = 0; i < times; i++) {
    rawClose(BAD_FD);
  }
};
const ownedCloseBad: Op = (times) => {
  for (let i = 0; i < times; i++) {
    adopt(BAD_FD).close();
  }
};
const registry = new FinalizationRegistry<number>(() => {});
const registerUnregister: Op = (times) => {
  for (let i = 0; i < times; i++) {
    const o = {};
    registry.register(o, 1, o);
    registry.unregister(o);
  }
};

// ---------------------------------------------------------------------------------------------------
// Measurement machinery
// ---------------------------------------------------------------------------------------------------

interface Unit {
  group: string;
  name: string;
  /** One round: returns that round's median ns per op. */
  run(round: number, ms: number): number;
}

/**
 * A tinybench task whose every sample is `batch` round trips (one explicit loop per op, so the call
 * site stays monomorphic per closure), reported per op through overriddenDuration.
 */
function jsUnit(group: string, name: string, op: Op, batch: number): Unit {
  const task = () => {
    const s = performance.now();
    op(batch);
    const dt = performance.now() - s;
    return { overriddenDuration: dt / batch, overriddenIterationCost: dt };
  };
  op(200); // first-touch and correctness check before any timing
  return {
    group,
    name,
    run(round, ms) {
      const bench = new Bench({
        time: ms,
        iterations: 8,
        warmup: true,
        warmupTime: round === 0 ? 200 : 0,
        warmupIterations: 4,
        throws: true,
      });
      bench.add(name, task);
      const [t] = bench.runSync();
      const r = t!.result;
      if (r.state !== "completed") throw new Error(`${name}: tinybench state ${r.state}`);
      return r.latency.p50 * 1e6;
    },
  };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Compiles bench/c/roundtrip.c into .bench-c/ when a C compiler is on PATH. */
function buildC(): { exe: string } | { skip: string } {
  const cc = Bun.which("cc") ?? Bun.which("gcc");
  if (!cc) return { skip: "no cc/gcc on PATH: C baseline skipped" };
  const root = join(import.meta.dir, "..");
  const src = join(import.meta.dir, "c", "roundtrip.c");
  const dir = join(root, ".bench-c");
  const exe = join(dir, "roundtrip");
  mkdirSync(dir, { recursive: true });
  if (!existsSync(exe) || statSync(exe).mtimeMs < statSync(src).mtimeMs) {
    const r = Bun.spawnSync([cc, "-O2", "-o", exe, src], { stderr: "pipe" });
    if (r.exitCode !== 0) return { skip: `C baseline skipped: ${cc} failed: ${r.stderr.toString().trim().split("\n")[0]}` };
  }
  return { exe };
}

function cUnit(group: string, exe: string, n: number): Unit {
  return {
    group,
    name: "C (gcc -O2)",
    run(_round, ms) {
      const r = Bun.spawnSync([exe, String(n), String(Math.max(2, ms / 3)), "3"], { stdout: "pipe", stderr: "pipe" });
      if (r.exitCode !== 0) throw new Error(`C baseline failed: ${r.stderr.toString()}`);
      const xs = r.stdout.toString().trim().split("\n").map((l) => Number(l.split(" ")[1]));
      return median(xs);
    },
  };
}

/** A small seeded PRNG (mulberry32): the same shuffles every run. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Runs every set of units for `rounds` rounds: in each round the sets run one after another and the
 * units of a set back to back, in a freshly shuffled order. (A rotation keeps the cyclic order, so the
 * same variant would always run right after the C baseline's process spawn, which measurably slows
 * whatever runs next.) Returns per-unit per-round ns.
 */
function runRounds(sets: readonly (readonly Unit[])[], rounds: number, ms: number, label: string): Map<Unit, number[]> {
  const out = new Map<Unit, number[]>(sets.flat().map((u) => [u, []]));
  const random = prng(0x5eed);
  for (let r = 0; r < rounds; r++) {
    const t = performance.now();
    for (const set of sets) {
      const units = [...set];
      for (let i = units.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [units[i], units[j]] = [units[j]!, units[i]!];
      }
      for (const u of units) out.get(u)!.push(u.run(r, ms));
    }
    process.stderr.write(`  ${label} round ${r + 1}/${rounds} (${((performance.now() - t) / 1000).toFixed(1)} s)\n`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------------

const fmtNs = (ns: number): string => (ns >= 10_000 ? `${(ns / 1000).toFixed(1)} µs` : `${ns.toFixed(0)} ns`);
const fmtOps = (ns: number): string => Math.round(1e9 / ns).toLocaleString("en-US");
const fmtX = (x: number): string => `${x.toFixed(3)}×`;

function table(header: string[], rows: string[][], right: boolean[]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => "| " + cells.map((c, i) => (right[i] ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join(" | ") + " |";
  return [line(header), "|" + w.map((x, i) => (right[i] ? "-".repeat(x + 1) + ":" : "-".repeat(x + 2))).join("|") + "|", ...rows.map(line)].join("\n");
}

/** Median of per-round ratios (paired: both measured in the same round) and their range. */
function paired(num: number[], den: number[]): { med: number; lo: number; hi: number } {
  const rs = num.map((x, i) => x / den[i]!);
  return { med: median(rs), lo: Math.min(...rs), hi: Math.max(...rs) };
}

// ---------------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------------

console.log(`unix-ancillary round-trip benchmark${QUICK ? " (--quick)" : ""}`);
console.log(`Bun ${Bun.version} (${Bun.revision.slice(0, 12)}), ${abi.name}, ${navigator.hardwareConcurrency} CPUs, tinybench 6.2.5`);
if ("skip" in c) console.log(`NOTE: ${c.skip}`);
console.log(`rounds=${CFG.rounds}, ${CFG.taskMs} ms per variant per round, order shuffled each round; value = median over rounds of the round's median ns/op\n`);


interface Group {
  n: number;
  pub: Unit;
  using?: Unit;
  alloc?: Unit;
  raw: Unit;
  c?: Unit;
}
// Instantiate every variant factory once before the measured ones. JSC constant-folds the captured
// variables of a closure scope while only one instance of it exists (the sockets, the buffers) and
// deoptimises when a second instance appears, so without this whichever variant happened to be a
// singleton ran specialised code: the same loop body measured up to 0.05× apart depending on it.
for (const make of [publicInto1, publicUsing1, publicAlloc1, publicSendRawRecv, rawSendPublicRecv]) make();
publicIntoN(1);
raw(1);

const groups: Group[] = GROUPS.map((n) => {
  const g = `${n} fd${n === 1 ? "" : "s"}`;
  return {
    n,
    pub: jsUnit(g, "public recvFdsIntoSync", n === 1 ? publicInto1() : publicIntoN(n), batchFor(n)),
    using: n === 1 ? jsUnit(g, "public recvFdsIntoSync + `using`", publicUsing1(), batchFor(n)) : undefined,
    alloc: n === 1 ? jsUnit(g, "public recvFdsSync (allocating)", publicAlloc1(), batchFor(n)) : undefined,
    raw: jsUnit(g, "raw bun:ffi", raw(n), batchFor(n)),
    c: "exe" in c ? cUnit(g, c.exe, n) : undefined,
  };
});
// Each group's variants run back to back in every round (order shuffled), so a paired ratio compares
// measurements taken within a second of each other: on a shared VM the speed drifts over seconds.
const groupUnits = groups.map((g) => [g.pub, g.using, g.alloc, g.raw, g.c].filter((u): u is Unit => u !== undefined));
const results = runRounds(groupUnits, CFG.rounds, CFG.taskMs, "main");

const rows: string[][] = [];
for (const g of groups) {
  for (const u of [g.pub, g.using, g.alloc, g.raw, g.c]) {
    if (!u) continue;
    const xs = results.get(u)!;
    const m = median(xs);
    const rawM = median(results.get(g.raw)!);
    rows.push([u.group, u.name, fmtNs(m), fmtOps(m), `${fmtNs(Math.min(...xs))} – ${fmtNs(Math.max(...xs))}`, u === g.raw ? "1.000×" : fmtX(m / rawM)]);
  }
}
console.log("## Round trip: send 1 byte + N fds, receive, close\n");
console.log(table(["fds/msg", "variant", "ns/op (median)", "ops/s", "range over rounds", "vs raw"], rows, [false, false, true, true, true, true]));

console.log("\n## Ratios (median of per-round paired ratios, [min – max] over rounds)\n");
const ratioRows: string[][] = [];
for (const g of groups) {
  const P = results.get(g.pub)!, R = results.get(g.raw)!;
  const fmt = (p: { med: number; lo: number; hi: number }) => `${fmtX(p.med)} [${p.lo.toFixed(2)}–${p.hi.toFixed(2)}]`;
  const pr = paired(P, R);
  const row = [String(g.n), fmt(pr), pr.med <= 1.1 ? "yes" : "NO"];
  if (g.c) {
    const C = results.get(g.c)!;
    row.push(fmt(paired(P, C)), fmt(paired(R, C)));
  } else row.push("n/a", "n/a");
  row.push(g.using ? fmt(paired(results.get(g.using)!, R)) : "");
  row.push(g.alloc ? fmt(paired(results.get(g.alloc)!, R)) : "");
  ratioRows.push(row);
}
// The goal rows (printed last): issue 12's "1 fd ≤ 1.06×, 16 and 253 fds ≤ 1.10× raw bun:ffi" and
// issue 14's "16 / 253 fds ≤ 1.05× raw bun:ffi".
const goalRows: GoalRow[] = [];
for (const g of groups) {
  const pr = paired(results.get(g.pub)!, results.get(g.raw)!).med;
  const goals: [number, string][] = g.n === 1 ? [[1.06, "engine redesign"]] : [[1.1, "engine redesign"], [1.05, "per-fd cost"]];
  for (const [goal, source] of goals) {
    goalRows.push({ what: `${g.n} fd${g.n > 1 ? "s" : ""}, public / raw bun:ffi (sync round trip)`, measured: fmtX(pr), goal: `≤ ${goal.toFixed(2)}× (${source})`, met: pr <= goal });
  }
}
console.log(table(["fds/msg", "public / raw-FFI", "≤ 1.10×", "public / C", "raw-FFI / C", "with `using` / raw", "recvFdsSync / raw"], ratioRows, [true, true, false, true, true, true, true]));

// ---- breakdown ----------------------------------------------------------------------------------
console.log("\n## Where the public path's time goes (1 fd; same interleaving, fewer rounds)\n");
const bRaw = jsUnit("1 fd", "raw send + raw recv/close", raw(1), 64);
const bPub = jsUnit("1 fd", "public send + public recv/close", publicInto1(), 64);
const bPs = jsUnit("1 fd", "public send + raw recv/close", publicSendRawRecv(), 64);
const bPr = jsUnit("1 fd", "raw send + public recv/close", rawSendPublicRecv(), 64);
const bRc = jsUnit("per fd", "libc close(bad fd) via FFI", rawCloseBad, 256);
const bOc = jsUnit("per fd", "adopt(bad fd).close() (OwnedFd)", ownedCloseBad, 256);
const bFr = jsUnit("per fd", "FinalizationRegistry register+unregister", registerUnregister, 256);
const bUnits = [bRaw, bPub, bPs, bPr, bRc, bOc, bFr];
const bRes = runRounds([bUnits.slice(0, 4), bUnits.slice(4)], CFG.breakdownRounds, CFG.breakdownMs, "breakdown");
const bm = (u: Unit) => median(bRes.get(u)!);
/** Overhead vs a baseline from the paired per-round ratio (robust to drift between rounds): (ratio − 1) × baseline median. */
const d = (u: Unit, base: Unit) => {
  const x = paired(bRes.get(u)!, bRes.get(base)!);
  const delta = (x.med - 1) * bm(base);
  return `${delta >= 0 ? "+" : ""}${delta.toFixed(0)} ns (${fmtX(x.med)})`;
};
console.log(
  table(
    ["what", "ns/op (median)", "vs baseline"],
    [
      [bRaw.name, fmtNs(bm(bRaw)), "baseline"],
      [bPub.name, fmtNs(bm(bPub)), d(bPub, bRaw)],
      [bPs.name, fmtNs(bm(bPs)), `${d(bPs, bRaw)}  = send-side overhead`],
      [bPr.name, fmtNs(bm(bPr)), `${d(bPr, bRaw)}  = receive-side overhead`],
      [bRc.name, fmtNs(bm(bRc)), "baseline"],
      [bOc.name, fmtNs(bm(bOc)), `${d(bOc, bRc)}  = OwnedFd construct+close per fd`],
      [bFr.name, fmtNs(bm(bFr)), "(part of the line above)"],
    ],
    [false, true, false],
  ),
);
const perFd = (() => {
  const g = groups[groups.length - 1]!;
  const p = median(results.get(g.pub)!), r = median(results.get(g.raw)!);
  return (p - r) / g.n;
})();
console.log(`\nper-fd overhead at ${MAX} fds/msg: (public − raw) / ${MAX} = ${perFd.toFixed(1)} ns per fd`);

// ---- allocation proof ------------------------------------------------------------------------------
console.log(`\n## Allocation proof (bench/alloc-check.ts): ${CFG.allocIters.toLocaleString("en-US")} round trips after warm-up\n`);
const allocRuns: AllocReport[] = [
  checkAllocations({ iterations: CFG.allocIters, nfds: 1, variant: "recvFdsIntoSync" }),
  checkAllocations({ iterations: CFG.allocIters, nfds: 1, variant: "recvFdsSync" }),
  checkAllocations({ iterations: 500, nfds: 16, variant: "recvFdsIntoSync" }),
];
const TYPES = [...BUFFER_TYPES, "Array", "Function", "Object", "string"] as const;
console.log(
  table(
    ["run", ...TYPES, "OwnedFd created", "GC in loop", "heap growth (no GC / after GC)", "fd delta"],
    allocRuns.flatMap((r) => {
      const name = `${r.variant}, ${r.nfds} fd${r.nfds > 1 ? "s" : ""}, ${r.iterations}×`;
      return [
        [`${name}: allocated`, ...TYPES.map((t) => String(r.allocated[t])), String(r.ownedFdCreated), r.gcDuringLoop ? "yes (lower bound)" : "no", `${r.heapSizeGrowthNoGc} B / ${r.heapSizeGrowth} B`, String(r.fdDelta)],
        [`${name}: retained after GC`, ...TYPES.map((t) => String(r.retained[t])), "", "", "", ""],
      ];
    }),
    [false, ...TYPES.map(() => true), true, false, true, true],
  ),
);
console.log(
  "\n'allocated' = objects on the heap right after the loop minus before (no GC in between); OwnedFd and\n" +
    "ReceivedInto instances count as 'Object'. Buffer types (Uint8Array/ArrayBuffer/DataView/Int32Array/Uint32Array)\n" +
    "must be 0 for recvFdsIntoSync; recvFdsSync allocates one Uint8Array per call (the payload copy) by design.",
);

// ---- fd leak check -------------------------------------------------------------------------------
for (const p of pairs) p.close();
for (const fd of rawFds) rawClose(fd);
closeSync(devnull);
const fdsAtEnd = openFdTargets();
const added = [...fdsAtEnd].filter(([fd, t]) => fdsAtStart.get(fd) !== t);
console.log(
  `\n## fd leak check\n\nopen fds (/proc/self/fd, after Bun's lazy runtime fds exist): before ${fdsAtStart.size}, after ${fdsAtEnd.size} -> ` +
    (fdsAtEnd.size === fdsAtStart.size && added.length === 0 ? "no leak" : `LEAK? new: ${added.map(([fd, t]) => `${fd}->${t}`).join(", ")}`),
);
console.log(`total runtime ${((performance.now() - t0) / 1000).toFixed(1)} s`);

printGoals(goalRows);

const bufferAllocs = BUFFER_TYPES.reduce((s, t) => s + Math.max(0, allocRuns[0]!.allocated[t]), 0);
if (fdsAtEnd.size !== fdsAtStart.size || bufferAllocs > 0) process.exitCode = 1;
