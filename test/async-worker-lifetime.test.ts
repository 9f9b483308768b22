/**
 * One reactor per JS thread that uses async I/O, and its fds end with the thread: 20 Workers that
 * used async I/O, each terminated (or exiting, or running out of work), leave no reactor fd behind.
 * Runs in a child process (test/fixtures/async-workers.ts) so its fd table can be compared as a
 * whole; each Worker also names the fds its reactor owned, and those must be closed once it is gone.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";

const CHILD = join(import.meta.dir, "fixtures", "async-workers.ts");
const EMULATED = process.env.UA_EMULATED === "1";
const N = EMULATED ? 6 : 20;

interface Report {
  base: number;
  after: number;
  results: { owned: number[]; stillOpen: number[] }[];
}

function runChild(mode: string): Report {
  const r = Bun.spawnSync([process.execPath, CHILD, mode, String(N)], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`child exited ${r.exitCode}: ${r.stderr.toString()}`);
  return JSON.parse(r.stdout.toString().trim().split("\n").at(-1)!) as Report;
}

describe("a Worker's reactor fds end with the Worker", () => {
  for (const mode of ["terminate", "exit", "natural"]) {
    test(`${N} Workers that used async I/O, each ended by ${mode === "terminate" ? "worker.terminate()" : mode === "exit" ? "process.exit() inside it" : "running out of work"}: no reactor fd left open`, () => {
      const rep = runChild(mode);
      expect(rep.results.length).toBe(N);
      for (const r of rep.results) {
        // epoll fd + eventfd on Linux (kqueue alone on the BSDs), reported by the Worker itself
        expect(r.owned.length).toBeGreaterThanOrEqual(1);
        expect(r.stillOpen).toEqual([]);
      }
      expect(rep.after).toBe(rep.base);
    }, EMULATED ? 300_000 : 60_000);
  }
});
