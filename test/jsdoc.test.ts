/**
 * Hover docs: every export of the three entry points (unix-ancillary, /handoff, /pool) carries JSDoc
 * (what it is, and for fds who owns them), read the way an editor does (the TypeScript checker on the
 * entry file).
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import ts from "typescript";

const ROOT = join(import.meta.dir, "..");

function undocumented(entry: string): { total: number; missing: string[] } {
  const file = join(ROOT, entry);
  const program = ts.createProgram([file], {
    allowImportingTsExtensions: true,
    noEmit: true,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    module: ts.ModuleKind.ESNext,
    target: ts.ScriptTarget.ESNext,
    types: ["bun-types"],
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const mod = checker.getSymbolAtLocation(program.getSourceFile(file)!)!;
  const missing: string[] = [];
  const exports = checker.getExportsOfModule(mod);
  for (const exp of exports) {
    const sym = exp.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exp) : exp;
    if (!ts.displayPartsToString(sym.getDocumentationComment(checker)).trim()) missing.push(exp.name);
  }
  return { total: exports.length, missing: missing.sort() };
}

test.each([
  ["unix-ancillary", "src/index.ts"],
  ["unix-ancillary/handoff", "src/handoff/index.ts"],
  ["unix-ancillary/pool", "src/pool/index.ts"],
])("every export of %s has JSDoc", (_name, entry) => {
  const { total, missing } = undocumented(entry);
  expect(total).toBeGreaterThan(10);
  expect(missing).toEqual([]);
}, 120_000);
