/**
 * The goal table each benchmark prints last: its rows of the start-up / wake-up goals (issue 14) and
 * the engine's (issue 12), measured in this run next to the goal. Goals given in milliseconds were
 * set on a machine where a bare `bun -e 0` took ≈ 7 ms; rows that depend on machine speed say so and
 * show the same goal as a ratio to a bare Bun measured in this run.
 */
export interface GoalRow {
  what: string;
  measured: string;
  goal: string;
  /** null: not decidable from this run (e.g. a goal for a quiet machine, measured on a busy one). */
  met: boolean | null;
}

/** Milliseconds a bare `bun -e 0` took on the machine the millisecond goals were set on. */
export const GOAL_MACHINE_BARE_BUN_MS = 7;

export function printGoals(rows: readonly GoalRow[]): void {
  console.log("\ngoals (measured in this run):");
  console.log("| what | measured | goal | met |");
  console.log("|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.what} | ${r.measured} | ${r.goal} | ${r.met === null ? "n/a" : r.met ? "yes" : "no"} |`);
}
