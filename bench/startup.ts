/**
 * Startup cost, measured from outside: whole processes, interleaved, medians and ratios to a bare Bun
 * measured in the same rounds (never absolute claims: the machine is shared and noisy).
 *   bun bench/startup.ts [rounds=15] [other-checkout]
 * With a second checkout (e.g. `git worktree add /tmp/before <commit>` plus a node_modules symlink),
 * its two imports join the same interleaved rounds, for before/after numbers from one run.
 *
 * 1. Process wall time (spawn -> exit) and CPU time (user + system, from the child's rusage) of
 *    `bun -e 0`, `import "unix-ancillary"` and `import "unix-ancillary/handoff"`, each round in a
 *    shuffled order. On a shared machine the CPU time is the steadier of the two: compare that.
 *    Ends with the goal rows (bench/goals.ts): each entry's wall time over bare Bun, also as a ratio
 *    to the bare Bun of the same rounds (the goals were set where bare Bun took ≈ 7 ms).
 * 2. Where an import's time goes: timing marks around the platform layer's steps (ABI detection,
 *    table selection, libc dlopen) and the two entry points, each in a fresh process, medians.
 */
import { GOAL_MACHINE_BARE_BUN_MS, printGoals, type GoalRow } from "./goals.ts";

const ROUNDS = Number(process.argv[2] ?? 15);
const OTHER = process.argv[3];
const root = new URL("..", import.meta.url).pathname;
const bun = process.execPath;

type Variant = { code: string; cwd: string };
const VARIANTS: Record<string, Variant> = {
  "bare bun -e 0": { code: "0", cwd: root },
  'import "unix-ancillary"': { code: 'import "unix-ancillary"', cwd: root },
  'import "unix-ancillary/handoff"': { code: 'import "unix-ancillary/handoff"', cwd: root },
};
if (OTHER) {
  VARIANTS['import "unix-ancillary" (other checkout)'] = { code: 'import "unix-ancillary"', cwd: OTHER };
  VARIANTS['import "unix-ancillary/handoff" (other checkout)'] = { code: 'import "unix-ancillary/handoff"', cwd: OTHER };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

function runOnce({ code, cwd }: Variant): { wall: number; cpu: number } {
  const t0 = performance.now();
  const r = Bun.spawnSync([bun, "-e", code], { cwd, stdout: "ignore", stderr: "pipe" });
  const wall = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`${code}: exit ${r.exitCode}: ${r.stderr.toString()}`);
  return { wall, cpu: Number(r.resourceUsage.cpuTime.total) / 1000 };
}

// ---- 1. whole processes ----
const wall: Record<string, number[]> = Object.fromEntries(Object.keys(VARIANTS).map((k) => [k, []]));
const cpu: Record<string, number[]> = Object.fromEntries(Object.keys(VARIANTS).map((k) => [k, []]));
for (const k of Object.keys(VARIANTS)) runOnce(VARIANTS[k]!); // warm the file cache
for (let r = 0; r < ROUNDS; r++) {
  for (const k of shuffle(Object.keys(VARIANTS))) {
    const t = runOnce(VARIANTS[k]!);
    wall[k]!.push(t.wall);
    cpu[k]!.push(t.cpu);
  }
}

const bareWall = median(wall["bare bun -e 0"]!);
const bareCpu = median(cpu["bare bun -e 0"]!);
console.log(`startup, ${ROUNDS} interleaved rounds (process spawn -> exit), medians:`);
console.log("| what | wall ms | wall over bare | CPU ms | CPU over bare | CPU ratio to bare |");
console.log("|---|---|---|---|---|---|");
for (const k of Object.keys(VARIANTS)) {
  const w = median(wall[k]!);
  const c = median(cpu[k]!);
  const bare = k.startsWith("bare");
  console.log(`| ${k} | ${w.toFixed(1)} | ${bare ? "—" : `+${(w - bareWall).toFixed(1)}`} | ${c.toFixed(1)} | ${bare ? "—" : `+${(c - bareCpu).toFixed(1)}`} | ${(c / bareCpu).toFixed(2)}× |`);
}

// ---- 2. where the import time goes ----
const PHASES = `
const t = [performance.now()];
const detect = await import("./src/platform/detect.ts");
t.push(performance.now());
detect.detectAbiName();
t.push(performance.now());
await import("./src/platform/index.ts");
t.push(performance.now());
await import("./src/platform/libc.ts");
t.push(performance.now());
await import("./src/index.ts");
t.push(performance.now());
await import("./src/handoff/index.ts");
t.push(performance.now());
console.log(JSON.stringify(t.slice(1).map((x, i) => x - t[i])));
`;
const PHASE_NAMES = [
  "load detect.ts",
  "detectAbiName() (libc detection)",
  "platform/index.ts (the running ABI's table; detection again at import)",
  "platform/libc.ts (dlopen + bind)",
  "rest of src/index.ts",
  "rest of src/handoff/index.ts",
];
const phases: number[][] = PHASE_NAMES.map(() => []);
for (let r = 0; r < ROUNDS; r++) {
  const out = Bun.spawnSync([bun, "-e", PHASES], { cwd: root, stdout: "pipe", stderr: "pipe" });
  if (out.exitCode !== 0) throw new Error(out.stderr.toString());
  const xs = JSON.parse(out.stdout.toString().trim()) as number[];
  xs.forEach((x, i) => phases[i]!.push(x));
}
console.log(`\nimport phases (timing marks, ${ROUNDS} fresh processes, medians; each step after the previous ones):`);
console.log("| step | median ms |");
console.log("|---|---|");
PHASE_NAMES.forEach((n, i) => console.log(`| ${n} | ${median(phases[i]!).toFixed(2)} |`));

// ---- 3. goals ----
const goalRows: GoalRow[] = [];
for (const [k, goalMs] of [['import "unix-ancillary"', 3], ['import "unix-ancillary/handoff"', 8]] as const) {
  const w = median(wall[k]!);
  const c = median(cpu[k]!);
  const goalRatio = (GOAL_MACHINE_BARE_BUN_MS + goalMs) / GOAL_MACHINE_BARE_BUN_MS;
  goalRows.push({
    what: `\`${k}\`, wall over bare Bun`,
    measured: `+${(w - bareWall).toFixed(1)} ms = ${(w / bareWall).toFixed(2)}× bare (CPU +${(c - bareCpu).toFixed(1)} ms)`,
    goal: `≤ +${goalMs} ms where bare Bun takes ${GOAL_MACHINE_BARE_BUN_MS} ms (${goalRatio.toFixed(2)}× bare)`,
    met: w / bareWall <= goalRatio,
  });
}
printGoals(goalRows);
