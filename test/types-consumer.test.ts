/**
 * Types for every consumer: packs the tarball (`bun pm pack`, which runs `prepack` =
 * scripts/build-types.ts), installs it into fresh projects and runs `tsc --noEmit` there on a consumer
 * that re-exports every export of both entry points (so each name must resolve) plus
 * test/fixtures/types-consumer/usage.ts (typical calls and options objects). One project per tsconfig:
 * `bun init`'s, NodeNext, bundler without allowImportingTsExtensions, and a strictest one; the last
 * three with skipLibCheck off, so the published .d.ts files themselves are checked.
 *
 * Offline: typescript, bun-types and @types/node come from this repository's node_modules (a
 * two-line @types/bun referencing bun-types stands in for the registry package).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import ts from "typescript";

const ROOT = join(import.meta.dir, "..");
const NM = join(ROOT, "node_modules");
// Types do not depend on the ABI: under qemu this would only be slow.
const EMULATED = process.env.UA_EMULATED === "1";
const work = mkdtempSync(join(tmpdir(), "ua-types-"));
let pkgDir = "";

afterAll(() => rmSync(work, { recursive: true, force: true }));

beforeAll(() => {
  if (EMULATED) return;
  const r = Bun.spawnSync([process.execPath, "pm", "pack", "--destination", work], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`bun pm pack failed:\n${r.stdout}\n${r.stderr}`);
  const tgz = readdirSync(work).find((f) => f.endsWith(".tgz"));
  if (!tgz) throw new Error("no tarball");
  const x = Bun.spawnSync(["tar", "-xzf", join(work, tgz), "-C", work]);
  if (x.exitCode !== 0) throw new Error("tar failed");
  pkgDir = join(work, "package");
}, 600_000);

/** Names exported by a declaration entry point, with whether each is type-only. */
function exportsOf(dts: string): { name: string; typeOnly: boolean }[] {
  const sf = ts.createSourceFile(dts, readFileSync(dts, "utf8"), ts.ScriptTarget.Latest, true);
  const out: { name: string; typeOnly: boolean }[] = [];
  for (const st of sf.statements) {
    if (ts.isExportDeclaration(st) && st.exportClause && ts.isNamedExports(st.exportClause)) {
      for (const el of st.exportClause.elements) out.push({ name: el.name.text, typeOnly: st.isTypeOnly || el.isTypeOnly });
    }
  }
  return out;
}

function consumerSource(): string {
  let src = "// Generated: every export of both entry points must resolve.\n";
  for (const [spec, entry] of [["unix-ancillary", "index.d.ts"], ["unix-ancillary/handoff", join("handoff", "index.d.ts")]] as const) {
    const names = exportsOf(join(pkgDir, "dist", "types", entry));
    expect(names.length).toBeGreaterThan(10);
    const alias = (n: string) => `${n} as ${spec === "unix-ancillary" ? "main" : "handoff"}_${n}`;
    src += `export { ${names.map((e) => (e.typeOnly ? "type " : "") + alias(e.name)).join(", ")} } from "${spec}";\n`;
  }
  return src + `export { usage } from "./usage.js";\n`;
}

function project(name: string, compilerOptions: Record<string, unknown>): string {
  const dir = join(work, name);
  mkdirSync(join(dir, "node_modules", "@types", "bun"), { recursive: true });
  cpSync(pkgDir, join(dir, "node_modules", "unix-ancillary"), { recursive: true });
  for (const dep of ["typescript", "bun-types", "undici-types", join("@types", "node")]) symlinkSync(join(NM, dep), join(dir, "node_modules", dep));
  writeFileSync(join(dir, "node_modules", "@types", "bun", "package.json"), JSON.stringify({ name: "@types/bun", version: "0.0.0", types: "index.d.ts" }));
  writeFileSync(join(dir, "node_modules", "@types", "bun", "index.d.ts"), `/// <reference types="bun-types" />\n`);
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: `consumer-${name}`, private: true, type: "module" }));
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions, files: ["consumer.ts", "usage.ts"] }, null, 2));
  writeFileSync(join(dir, "consumer.ts"), consumerSource());
  cpSync(join(ROOT, "test", "fixtures", "types-consumer", "usage.ts"), join(dir, "usage.ts"));
  return dir;
}

function tsc(dir: string): string {
  const r = Bun.spawnSync([process.execPath, join(NM, "typescript", "bin", "tsc"), "-p", dir], { cwd: dir, stdout: "pipe", stderr: "pipe" });
  return (r.stdout.toString() + r.stderr.toString()).trim() + (r.exitCode === 0 ? "" : `\n(exit ${r.exitCode})`);
}

const base = { target: "ESNext", lib: ["ESNext"], types: ["bun"], strict: true, noEmit: true };

const CONFIGS: Record<string, Record<string, unknown>> = {
  // `bun init` (Bun 1.4.5), verbatim
  "bun-init": {
    lib: ["ESNext"], target: "ESNext", module: "Preserve", moduleDetection: "force", jsx: "react-jsx", allowJs: true, types: ["bun"],
    moduleResolution: "bundler", allowImportingTsExtensions: true, verbatimModuleSyntax: true, noEmit: true,
    strict: true, skipLibCheck: true, noFallthroughCasesInSwitch: true, noUncheckedIndexedAccess: true, noImplicitOverride: true,
    noUnusedLocals: false, noUnusedParameters: false, noPropertyAccessFromIndexSignature: false,
  },
  nodenext: { ...base, module: "NodeNext", moduleResolution: "NodeNext", skipLibCheck: false },
  "bundler-no-ts-extensions": { ...base, module: "ESNext", moduleResolution: "bundler", skipLibCheck: false },
  strictest: {
    ...base, module: "NodeNext", moduleResolution: "NodeNext", skipLibCheck: false,
    exactOptionalPropertyTypes: true, noPropertyAccessFromIndexSignature: true, noUncheckedIndexedAccess: true,
    noImplicitReturns: true, noImplicitOverride: true, noFallthroughCasesInSwitch: true, useUnknownInCatchVariables: true,
    verbatimModuleSyntax: true, isolatedModules: true, noUnusedLocals: true, noUnusedParameters: true,
  },
};

describe.skipIf(EMULATED)("the packed tarball's types (skipped under qemu: they do not depend on the ABI)", () => {
  test("the tarball carries the declarations, the sources and the non-Bun guard, and no tests", () => {
    const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
    for (const entry of [pkg.exports["."], pkg.exports["./handoff"]]) {
      for (const cond of ["types", "bun", "import", "default"]) expect(Bun.file(join(pkgDir, entry[cond])).size).toBeGreaterThan(0);
    }
    expect(readdirSync(pkgDir)).not.toContain("test");
    // stripInternal: `/** @internal */` members are not in the published types
    const owned = readFileSync(join(pkgDir, "dist", "types", "owned-fd.d.ts"), "utf8");
    expect(owned).toContain("class OwnedFd");
    expect(owned).not.toContain("_enroll");
    expect(dirname(pkg.types)).toBe("./dist/types");
  });

  test("every relative link in the packed README.md and docs resolves inside the tarball", () => {
    const missing: string[] = [];
    for (const page of ["README.md", ...readdirSync(join(pkgDir, "docs")).map((f) => `docs/${f}`)]) {
      const text = readFileSync(join(pkgDir, page), "utf8");
      for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue; // absolute URL
        if (!existsSync(join(pkgDir, dirname(page), target))) missing.push(`${page} -> ${target}`);
      }
    }
    expect(missing).toEqual([]);
  });

  for (const [name, options] of Object.entries(CONFIGS)) {
    test(`tsc --noEmit is clean for a consumer touching every export (${name})`, () => {
      expect(tsc(project(name, options))).toBe("");
    }, 300_000);
  }
});
