/**
 * Docs that run: every ```ts block of README.md and docs/*.md is type-checked (one tsc over all of
 * them, with this repository's tsconfig, where `unix-ancillary` resolves to the sources like the
 * package self-reference does), and run with Bun unless the line before it says otherwise:
 *
 *   <!-- doc-test: run -->                     run (the default)
 *   <!-- doc-test: file child.ts -->           written as child.ts next to the other blocks of that
 *                                              page (a block that runs uses it), not run by itself
 *   <!-- doc-test: check-only (reason) -->     type-checked only; the reason is required
 *
 * A block must be complete as shown: whatever it needs is declared in the block (a short visible
 * prelude), so a reader can paste it into a file and run it.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const OUT = join(ROOT, ".doc-tests");
const EMULATED = process.env.UA_EMULATED === "1";

interface Block {
  page: string;
  line: number;
  mode: "run" | "file" | "check-only";
  file: string;
  code: string;
}

function blocksOf(page: string): Block[] {
  const lines = readFileSync(join(ROOT, page), "utf8").split("\n");
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== "```ts") continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i]!);
    const marker = /^<!-- doc-test: (run|file [\w.-]+\.ts|check-only \(.+\)) -->$/.exec(lines[start - 1] ?? "");
    if (lines[start - 1]?.startsWith("<!-- doc-test") && !marker) throw new Error(`${page}:${start}: malformed doc-test marker`);
    const kind = marker?.[1] ?? "run";
    const mode = kind.startsWith("file") ? "file" : kind.startsWith("check-only") ? "check-only" : "run";
    const file = mode === "file" ? kind.slice(5) : `block-${start + 1}.ts`;
    // `export {}` makes a block without imports a module too (top-level await, no global clashes).
    out.push({ page, line: start + 1, mode, file, code: body.join("\n") + "\nexport {};\n" });
  }
  return out;
}

const pages = ["README.md", ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
const blocks = pages.flatMap(blocksOf);
const dirOf = (b: Block) => join(OUT, b.page.replace(/[/.]/g, "_"));

rmSync(OUT, { recursive: true, force: true });
for (const b of blocks) {
  mkdirSync(dirOf(b), { recursive: true });
  writeFileSync(join(dirOf(b), b.file), b.code);
}
writeFileSync(join(OUT, "tsconfig.json"), JSON.stringify({ extends: "../tsconfig.json", include: ["**/*.ts"] }));
afterAll(() => rmSync(OUT, { recursive: true, force: true }));

describe("docs", () => {
  test(`every ts block type-checks (${blocks.length} blocks in ${pages.join(", ")})`, () => {
    expect(blocks.length).toBeGreaterThanOrEqual(10);
    const r = Bun.spawnSync([process.execPath, join(ROOT, "node_modules", "typescript", "bin", "tsc"), "--noEmit", "-p", OUT], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    expect((r.stdout.toString() + r.stderr.toString()).trim()).toBe("");
    expect(r.exitCode).toBe(0);
  }, 300_000);

  for (const b of blocks.filter((x) => x.mode === "run")) {
    test(`${b.page}:${b.line} runs and exits 0 without stderr`, () => {
      // PORT=0: a block that listens on `process.env.PORT ?? 8080` takes a free port, so a run never
      // depends on what else is listening on this machine (another test run, a dev server).
      const r = Bun.spawnSync([process.execPath, join(dirOf(b), b.file)], { cwd: dirOf(b), env: { ...process.env, PORT: "0" }, stdout: "pipe", stderr: "pipe", timeout: EMULATED ? 120_000 : 30_000 });
      expect({ code: r.exitCode, stderr: r.stderr.toString() }).toEqual({ code: 0, stderr: "" });
    }, EMULATED ? 150_000 : 40_000);
  }
});
