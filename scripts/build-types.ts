/**
 * `prepack`: writes the declaration files consumers type-check against (dist/types, not in git) and
 * refreshes src/not-bun.mjs. Bun runs the TypeScript sources directly; only the types are built.
 *
 * tsc (tsconfig.build.json: emitDeclarationOnly, stripInternal) keeps the sources' `./x.ts` import
 * specifiers in the .d.ts files, which a consumer without allowImportingTsExtensions rejects
 * (TS5097) even with skipLibCheck; they are rewritten to `./x.js`, which every moduleResolution
 * (bundler, NodeNext, node16) maps to `./x.d.ts`.
 */
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const out = join(root, "dist", "types");

function* walk(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* walk(p);
    else yield p;
  }
}

rmSync(join(root, "dist"), { recursive: true, force: true });
const tsc = Bun.spawnSync([process.execPath, join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.build.json")], {
  cwd: root,
  stdout: "inherit",
  stderr: "inherit",
});
if (tsc.exitCode !== 0) {
  console.error("build-types: tsc failed");
  process.exit(1);
}
let files = 0;
for (const file of walk(out)) {
  if (!file.endsWith(".d.ts")) continue;
  const text = readFileSync(file, "utf8");
  const fixed = text.replace(/((?:from|import)\s*\(?\s*["'])(\.{1,2}\/[^"']*?)\.ts(["'])/g, "$1$2.js$3");
  if (fixed !== text) writeFileSync(file, fixed);
  files++;
}
const gen = Bun.spawnSync([process.execPath, join(root, "scripts", "gen-not-bun.ts")], { cwd: root, stdout: "inherit", stderr: "inherit" });
if (gen.exitCode !== 0) process.exit(1);
console.log(`build-types: ${files} declaration files in dist/types`);
