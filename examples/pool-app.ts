/**
 * A pool worker: the single-process Bun.serve app plus joinPool() and ready().
 * Run it under a supervisor (examples/pool-supervisor.ts); every response names the worker's pid.
 *   FAIL=exit     exit(1) before ready (a broken deploy)
 *   FAIL=crash    exit(1) 200 ms after ready (a crash loop)
 *   WARMUP_MS=n   sleep before ready (a slow start)
 *   FAIL_FILE=p   while file p exists, every new worker exits(1) before ready (a broken deploy)
 *   COUNT=1       count accepted connections (one requestIP() per request)
 *   CRASH_FILE=p  while file p exists, a worker of slot 0 exits(1) before ready (a crash loop of one slot)
 */
import { existsSync } from "node:fs";
import { joinPool } from "unix-ancillary/pool";

const w = await joinPool();
if (process.env.FAIL === "exit") process.exit(1);
if (process.env.FAIL_FILE && existsSync(process.env.FAIL_FILE)) process.exit(1);
if (process.env.CRASH_FILE && w.slot === 0 && existsSync(process.env.CRASH_FILE)) process.exit(1);
await w.serve({
  async fetch(req: Request) {
    if (req.method === "POST") await req.text();
    if (new URL(req.url).pathname === "/slow") await Bun.sleep(Number(process.env.SLOW_MS ?? 300));
    return new Response(`hello from ${process.pid}\n`, { headers: { "x-server": String(process.pid) } });
  },
}, { countConnections: process.env.COUNT === "1" });
if (process.env.WARMUP_MS) await Bun.sleep(Number(process.env.WARMUP_MS));
await w.ready();
if (process.env.FAIL === "crash") setTimeout(() => process.exit(1), 200);
