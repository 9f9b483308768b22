#!/usr/bin/env bun
/**
 * Pool status / reload from the command line, over the supervisor's control socket:
 *   bun src/pool/cli.ts status <controlPath> [--json]
 *   bun src/pool/cli.ts reload <controlPath>
 */
import { poolControl } from "./supervisor.ts";
import type { PoolStatus } from "./supervisor.ts";

export function formatStatus(s: PoolStatus): string {
  const lines = [
    `supervisor ${s.pid}, generation ${s.generation}${s.reloading ? " (rolling restart running)" : ""}, listening on ${s.listeners.map((l) => (l.family === "unix" ? l.address : `${l.address}:${l.port}`)).join(", ")}`,
    "slot  worker  pid       gen  state     restarts  accepted  requests  up",
  ];
  const now = Date.now();
  for (const w of s.workers) {
    lines.push(
      [String(w.slot).padEnd(4), String(w.id).padEnd(6), String(w.pid).padEnd(8), String(w.generation).padEnd(3), w.state.padEnd(8), String(w.restarts).padEnd(8), (w.accepted < 0 ? "n/a" : String(w.accepted)).padEnd(8), String(w.requests).padEnd(8), `${Math.round((now - w.startedAt) / 1000)}s`].join("  "),
    );
  }
  if (s.failedSlots.length) lines.push(`FAILED slots (crash loop, not restarted until the next reload): ${s.failedSlots.join(", ")}`);
  return lines.join("\n");
}

if (import.meta.main) {
  const [cmd, path, flag] = process.argv.slice(2);
  if ((cmd !== "status" && cmd !== "reload") || !path) {
    console.error("usage: bun src/pool/cli.ts status|reload <controlPath> [--json]");
    process.exit(2);
  }
  try {
    const m = await poolControl(path, cmd);
    if (flag === "--json") console.log(JSON.stringify(m.status ?? m.report));
    else if (cmd === "status") console.log(formatStatus(m.status as PoolStatus));
    else console.log(`reloaded: ${JSON.stringify(m.report)}`);
  } catch (e) {
    console.error(`pool ${cmd}: ${(e as Error).message}`);
    process.exit(1);
  }
}
