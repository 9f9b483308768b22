/**
 * UNIX_ANCILLARY_DEBUG=1: an OwnedFd collected without close() is reported with where it was created
 * (the user's function, not the library's frames); without it, nothing is printed.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";

const CHILD = join(import.meta.dir, "fixtures", "debug-leak.ts");

function run(debug: boolean): string {
  const env = { ...process.env };
  if (debug) env.UNIX_ANCILLARY_DEBUG = "1";
  else delete env.UNIX_ANCILLARY_DEBUG;
  const r = Bun.spawnSync([process.execPath, CHILD], { env, stdout: "pipe", stderr: "pipe" });
  expect(r.exitCode).toBe(0);
  return r.stderr.toString();
}

test("debug mode names the creation site of a leaked OwnedFd", () => {
  const err = run(true);
  expect(err).toMatch(/unix-ancillary: fd \d+ was garbage-collected without close\(\); closing it now\. It was created at:/);
  expect(err).toContain("receiveAndForgetTheFd");
  expect(err).toContain("debug-leak.ts");
}, 60_000);

test("without debug mode the safety net closes it silently", () => {
  expect(run(false)).toBe("");
}, 60_000);
