/**
 * Under Node.js (any runtime without the "bun" export condition), importing or requiring either entry
 * point fails at once with ERR_UA_NEEDS_BUN and a message saying what is needed and why, not with
 * ERR_UNKNOWN_FILE_EXTENSION or a syntax error from inside the TypeScript sources. Bun itself still
 * resolves the package to its sources (the "bun" condition comes first).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const node = Bun.which("node");
const project = mkdtempSync(join(tmpdir(), "ua-node-guard-"));
mkdirSync(join(project, "node_modules"));
symlinkSync(ROOT, join(project, "node_modules", "unix-ancillary"));
afterAll(() => rmSync(project, { recursive: true, force: true }));

function runNode(file: string, source: string): { code: number | null; out: string } {
  writeFileSync(join(project, file), source);
  const r = Bun.spawnSync([node!, file], { cwd: project, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
}

const EXPECTED = /^ERR_UA_NEEDS_BUN unix-ancillary needs Bun >= 1\.4\.5: it passes file descriptors by calling libc through bun:ffi, which Node\.js \d+\.\d+\.\d+ does not have\. Run your program with `bun`/;

describe.skipIf(!node)(`under Node.js (${node ?? "node not installed: skipped"})`, () => {
  for (const spec of ["unix-ancillary", "unix-ancillary/handoff"]) {
    test(`import("${spec}") rejects with ERR_UA_NEEDS_BUN`, () => {
      const r = runNode("imp.mjs", `import(${JSON.stringify(spec)}).then(() => console.log("LOADED"), (e) => console.log(e.code, e.message));\n`);
      expect(r.out).toMatch(EXPECTED);
      expect(r.code).toBe(0);
    });
    test(`require("${spec}") throws ERR_UA_NEEDS_BUN`, () => {
      const r = runNode("req.cjs", `try { require(${JSON.stringify(spec)}); console.log("LOADED"); } catch (e) { console.log(e.code, e.message); }\n`);
      expect(r.out).toMatch(EXPECTED);
    });
  }
  test("a static import fails the program with that message", () => {
    const r = runNode("static.mjs", `import { UnixStream } from "unix-ancillary";\nconsole.log(UnixStream);\n`);
    expect(r.code).not.toBe(0);
    expect(r.out).toContain("unix-ancillary needs Bun >= 1.4.5");
  });
});

test("Bun resolves both entry points to the TypeScript sources", () => {
  const r = Bun.spawnSync([process.execPath, "-e", `console.log(require.resolve("unix-ancillary"), require.resolve("unix-ancillary/handoff"))`], { cwd: project, stdout: "pipe", stderr: "pipe" });
  const [main, handoff] = r.stdout.toString().trim().split(" ");
  expect(main).toEndWith(join("src", "index.ts"));
  expect(handoff).toEndWith(join("src", "handoff", "index.ts"));
});

test("src/not-bun.mjs declares every runtime export of both entry points (regenerate: bun scripts/gen-not-bun.ts)", async () => {
  const text = await Bun.file(join(ROOT, "src", "not-bun.mjs")).text();
  const declared = new Set(text.slice(text.indexOf("export let") + "export let".length).split(/[\s,;]+/).filter(Boolean));
  const missing: string[] = [];
  for (const entry of ["../src/index.ts", "../src/handoff/index.ts"]) {
    for (const name of Object.keys(await import(entry))) if (!declared.has(name)) missing.push(name);
  }
  expect(missing).toEqual([]);
  // and it throws the same error as the CommonJS guard
  expect(text).toContain((await Bun.file(join(ROOT, "src", "not-bun.cjs")).text()).split("\n").find((l) => l.startsWith("error.code"))!);
});
