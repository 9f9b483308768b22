/**
 * Module layering of src/ (docs/design.md, "Architecture"), from the import statements themselves:
 *   - no import cycle among value imports (a type-only import is erased and cannot cycle at run time);
 *   - the core (everything outside handoff/ and pool/) never imports handoff/ or pool/, so
 *     `import "unix-ancillary"` never loads them;
 *   - handoff/ never imports pool/;
 *   - the pure codec (cmsg/) imports only cmsg/, platform/ and errors.ts.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..", "src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith(".ts") ? [p] : [];
  });
}

/** Relative value imports of every src file, as paths relative to src/. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const f of sourceFiles(ROOT)) {
    const text = readFileSync(f, "utf8");
    const deps: string[] = [];
    for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?[^;]*?\sfrom\s+["'](\.[^"']+)["']/gm)) {
      if (!m[1]) deps.push(relative(ROOT, resolve(dirname(f), m[2]!)));
    }
    for (const m of text.matchAll(/^import\s+["'](\.[^"']+)["']/gm)) deps.push(relative(ROOT, resolve(dirname(f), m[1]!)));
    graph.set(relative(ROOT, f), deps);
  }
  return graph;
}

const graph = importGraph();

test("the import graph has files and edges (the parser sees the imports)", () => {
  expect(graph.size).toBeGreaterThan(50);
  expect(graph.get("index.ts")!.length).toBeGreaterThan(5);
});

test("no import cycle among value imports", () => {
  const cycles: string[] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, "open");
    stack.push(f);
    for (const g of graph.get(f) ?? []) {
      if (state.get(g) === "open") cycles.push([...stack.slice(stack.indexOf(g)), g].join(" -> "));
      else if (!state.has(g)) visit(g);
    }
    stack.pop();
    state.set(f, "done");
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  expect(cycles).toEqual([]);
});

test("layers: the core never imports handoff/ or pool/, handoff/ never imports pool/, cmsg/ stays pure", () => {
  const wrong: string[] = [];
  for (const [f, deps] of graph) {
    const core = !f.startsWith("handoff/") && !f.startsWith("pool/");
    for (const d of deps) {
      if (core && (d.startsWith("handoff/") || d.startsWith("pool/"))) wrong.push(`${f} -> ${d}`);
      if (f.startsWith("handoff/") && d.startsWith("pool/")) wrong.push(`${f} -> ${d}`);
      if (f.startsWith("cmsg/") && !d.startsWith("cmsg/") && !d.startsWith("platform/") && d !== "errors.ts") wrong.push(`${f} -> ${d}`);
    }
  }
  expect(wrong).toEqual([]);
});

/** Files loaded by importing `entry`, following value imports only (lazy require()s are not followed). */
function staticClosure(entry: string): Set<string> {
  const seen = new Set<string>();
  const walk = (f: string): void => {
    if (seen.has(f)) return;
    seen.add(f);
    for (const g of graph.get(f) ?? []) walk(g);
  };
  walk(entry);
  return seen;
}

test("the reactor loads on the first async wait, not at import (bench/startup.ts)", () => {
  for (const entry of ["index.ts", "handoff/index.ts", "pool/index.ts"]) {
    const loaded = [...staticClosure(entry)].filter((f) => f.startsWith("async/"));
    expect({ entry, loaded: loaded.filter((f) => /reactor|backend/.test(f)) }).toEqual({ entry, loaded: [] });
  }
  // The door the socket layer waits through, and the one lazy require behind it.
  expect(staticClosure("index.ts").has("async/wait.ts")).toBe(true);
  expect(readFileSync(join(ROOT, "async", "wait.ts"), "utf8")).toContain('require("./reactor.ts")');
});
