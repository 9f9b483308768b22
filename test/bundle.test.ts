/**
 * Bundled and compiled apps: test/fixtures/bundle-app.ts (sync + async fd passing, an aborted wait,
 * a Bun.serve handoff) built with `bun build --target=bun` and `bun build --compile`, then run from a
 * directory that holds nothing but the artifact. The async paths need the reactor Worker, which must
 * come from inside the artifact (a Blob URL), not from a file next to it.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const APP = join(ROOT, "test", "fixtures", "bundle-app.ts");
const EMULATED = process.env.UA_EMULATED === "1";
const TIMEOUT = EMULATED ? 600_000 : 120_000;
const work = mkdtempSync(join(tmpdir(), "ua-bundle-"));

afterAll(() => rmSync(work, { recursive: true, force: true }));

function build(outDir: string, args: string[]): void {
  const r = Bun.spawnSync([process.execPath, "build", APP, ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`bun build ${args.join(" ")} failed:\n${r.stdout.toString()}\n${r.stderr.toString()}`);
  // Nothing but the artifact: a worker file next to it would hide the bug this test is for.
  expect(readdirSync(outDir).length).toBe(1);
}

/** Runs the artifact from an empty cwd and returns the checks it reported. */
function run(cmd: string[]): string[] {
  const cwd = mkdtempSync(join(work, "cwd-"));
  const env: Record<string, string | undefined> = { ...process.env, NODE_ENV: "production" };
  // scripts/run-abi.sh's musl Bun finds its C++ runtime through RUNPATH=$ORIGIN/compat; an executable
  // compiled from it lives elsewhere, so point the loader there (a real musl system has libstdc++).
  const compat = join(dirname(process.execPath), "compat");
  if (cmd[0] !== process.execPath && existsSync(compat)) env.LD_LIBRARY_PATH = compat;
  const r = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe", env });
  const out = r.stdout.toString();
  const err = r.stderr.toString();
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} exited ${r.exitCode}:\n${out}\n${err}`);
  const last = out.trim().split("\n").at(-1)!;
  return (JSON.parse(last) as { checks: string[] }).checks;
}

const ALL = ["sync", "async", "abort", "handoff"];

describe("bun build --target=bun", () => {
  for (const [name, extra] of [["plain", []], ["minified", ["--minify"]]] as const) {
    test(`${name}: sync, async, abort and handoff work from the bundle alone`, () => {
      const out = join(work, `bundle-${name}`);
      build(out, ["--target=bun", "--outdir", out, ...extra]);
      expect(run([process.execPath, join(out, "bundle-app.js")])).toEqual(ALL);
    }, TIMEOUT);
  }
});

describe("bun build --compile", () => {
  for (const [name, extra] of [["plain", []], ["minified bytecode", ["--minify", "--bytecode", "--format=esm"]]] as const) {
    test(`${name}: sync, async, abort and handoff work from the single-file executable`, () => {
      const out = join(work, `compile-${name.replace(" ", "-")}`);
      build(out, ["--compile", "--outfile", join(out, "app"), ...extra]);
      expect(run([join(out, "app")])).toEqual(ALL);
    }, TIMEOUT);
  }
});
