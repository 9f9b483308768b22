/**
 * Pool vs reusePort, same run (loopback):
 *   bun bench/pool.ts [seconds=5] [restarts=10] [rounds=2]
 *
 * 1. Throughput + p99 (wrk -t2 -c32 --latency, keep-alive; the non-retrying client if wrk is
 *    missing), interleaved rounds: a single Bun.serve process, 2 reusePort Bun.serve processes,
 *    a pool with 1 worker, a pool with 2 workers. All serve the same handler (examples/pool-app.ts's).
 * 2. Accept spread: new connections (non-retrying client, Connection: close) per worker pid for the
 *    2-worker pool and the 2 reusePort processes.
 * 3. Restarts under load (non-retrying client, keep-alive + new connections): `restarts` rolling
 *    restarts of the 2-worker pool vs 2 reusePort processes replaced one by one (start the new one,
 *    wait until it listens, then stop the old one gracefully: server.stop() and exit when idle).
 * Reports ratios to the baselines measured in the same run; absolute numbers vary with the machine.
 *
 * Internal mode: `bun bench/pool.ts --serve <port> <reusePort 0|1>` runs one baseline server.
 */
import { startPool, type Pool } from "../src/pool/index.ts";
import { httpLoad, formatLoad, type HttpLoadReport } from "../test/helpers/http-load.ts";

const APP = new URL("../examples/pool-app.ts", import.meta.url).pathname;

async function baseline(port: number, reuse: boolean): Promise<{ proc: ReturnType<typeof Bun.spawn>; stop: () => Promise<void> }> {
  const proc = Bun.spawn([process.execPath, import.meta.path, "--serve", String(port), reuse ? "1" : "0"], { stdout: "pipe", stderr: "inherit" });
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  const { value } = await reader.read();
  if (!value || !new TextDecoder().decode(value).includes("listening")) throw new Error("baseline server did not start");
  reader.releaseLock();
  return {
    proc,
    stop: async () => {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

async function freePort(): Promise<number> {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const p = s.port!;
  await s.stop(true);
  return p;
}

const hasWrk = Bun.spawnSync(["sh", "-c", "command -v wrk"]).exitCode === 0;

function parseWrkLatency(s: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(s);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
}

async function measure(port: number, seconds: number): Promise<{ rps: number; p99: number }> {
  if (hasWrk) {
    const p = Bun.spawn(["wrk", "-t2", "-c32", `-d${seconds}s`, "--latency", `http://127.0.0.1:${port}/`], { stdout: "pipe", stderr: "pipe" });
    const out = await new Response(p.stdout).text();
    await p.exited;
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
    const p99 = parseWrkLatency(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? "");
    const errors = /Socket errors: (.*)/.exec(out)?.[1];
    if (errors) console.log(`  wrk socket errors: ${errors}`);
    return { rps, p99 };
  }
  const load = httpLoad({ port, keepalive: 32, durationMs: seconds * 1000 });
  const r = await load.done();
  return { rps: r.rps, p99: NaN };
}

function spread(r: HttpLoadReport): string {
  const v = Object.values(r.byTag).sort((a, b) => b - a);
  const total = v.reduce((a, b) => a + b, 0);
  return `${v.map((x) => `${((100 * x) / total).toFixed(1)}%`).join(" / ")} of ${total}`;
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5);
  const restarts = Number(process.argv[3] ?? 10);
  const rounds = Number(process.argv[4] ?? 2);
  console.log(`pool bench: ${hasWrk ? "wrk -t2 -c32" : "non-retrying client, 32 keep-alive connections"}, ${seconds} s per round, ${rounds} rounds each, interleaved (order reversed every other round)`);
  const configs: Array<{ name: string; start: () => Promise<{ port: number; stop: () => Promise<void> }> }> = [
    { name: "single Bun.serve", start: async () => { const port = await freePort(); const b = await baseline(port, false); return { port, stop: b.stop }; } },
    { name: "2 reusePort processes", start: async () => { const port = await freePort(); const a = await baseline(port, true), b = await baseline(port, true); return { port, stop: async () => { await a.stop(); await b.stop(); } }; } },
    { name: "pool, 1 worker", start: async () => { const p = await startPool({ script: APP, workers: 1, listen: [{ port: 0 }], drain: { windowMs: 200 } }); return { port: p.sockets[0]!.info.port, stop: () => p.close() }; } },
    { name: "pool, 2 workers", start: async () => { const p = await startPool({ script: APP, workers: 2, listen: [{ port: 0 }], drain: { windowMs: 200 } }); return { port: p.sockets[0]!.info.port, stop: () => p.close() }; } },
    { name: "pool, 2 w., reuseport", start: async () => { const p = await startPool({ script: APP, workers: 2, listen: [{ port: 0 }], balance: "reuseport", drain: { windowMs: 200 } }); return { port: p.sockets[0]!.info.port, stop: () => p.close() }; } },
  ];
  const results = new Map<string, { rps: number[]; p99: number[] }>();
  for (let round = 0; round < rounds; round++) {
    for (const c of round % 2 === 0 ? configs : [...configs].reverse()) {
      const s = await c.start();
      await measure(s.port, 1); // warm-up
      const m = await measure(s.port, seconds);
      await s.stop();
      const r = results.get(c.name) ?? { rps: [], p99: [] };
      r.rps.push(m.rps);
      r.p99.push(m.p99);
      results.set(c.name, r);
    }
  }
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const base = results.get("2 reusePort processes")!;
  console.log("\nthroughput and p99 (keep-alive); ratios: median over rounds of the round's ratio to reusePort-2:");
  for (const [name, r] of results) {
    const rpsRatio = median(r.rps.map((x, i) => x / base.rps[i]!));
    const p99Ratio = median(r.p99.map((x, i) => x / base.p99[i]!));
    console.log(`  ${name.padEnd(24)} ${avg(r.rps).toFixed(0).padStart(8)} req/s (${rpsRatio.toFixed(2)}x reusePort-2)   p99 ${avg(r.p99).toFixed(2)} ms (${p99Ratio.toFixed(2)}x)`);
  }

  // accept spread over new connections
  console.log("\naccept spread (new connection per request, 4 clients, 3 s):");
  {
    const pool = await startPool({ script: APP, workers: 2, listen: [{ port: 0 }], drain: { windowMs: 200 }, env: { COUNT: "1" } });
    const r = await httpLoad({ port: pool.sockets[0]!.info.port, fresh: 4, durationMs: 3000 }).done();
    const st = await pool.statusAsync();
    console.log(`  pool, 2 workers:        ${spread(r)} (supervisor's per-worker accepted counts: ${st.workers.map((w) => w.accepted).join(" / ")})`);
    await pool.close();
    const rp = await startPool({ script: APP, workers: 2, listen: [{ port: 0 }], balance: "reuseport", drain: { windowMs: 200 } });
    const r3 = await httpLoad({ port: rp.sockets[0]!.info.port, fresh: 4, durationMs: 3000 }).done();
    console.log(`  pool, 2 w., reuseport:  ${spread(r3)}`);
    await rp.close();
    const port = await freePort();
    const a = await baseline(port, true), b = await baseline(port, true);
    const r2 = await httpLoad({ port, fresh: 4, durationMs: 3000 }).done();
    console.log(`  2 reusePort processes:  ${spread(r2)}`);
    await a.stop();
    await b.stop();
  }

  // restarts under load
  console.log(`\n${restarts} restarts under load (non-retrying client: 8 keep-alive + 4 new-connection clients):`);
  for (const balance of ["shared", "reuseport"] as const) {
    const pool: Pool = await startPool({ script: APP, workers: 2, listen: [{ port: 0 }], balance, drain: { windowMs: 200 } });
    const load = httpLoad({ port: pool.sockets[0]!.info.port, keepalive: 8, fresh: 4, pauseMs: 1 });
    await Bun.sleep(300);
    for (let i = 0; i < restarts; i++) await pool.reload();
    await Bun.sleep(300);
    const r = await load.stop();
    await pool.close();
    console.log(`  pool (${balance.padEnd(9)}), 2 workers, ${restarts} rolling restarts: ${formatLoad(r)}`);
  }
  {
    const port = await freePort();
    const procs = [await baseline(port, true), await baseline(port, true)];
    const load = httpLoad({ port, keepalive: 8, fresh: 4, pauseMs: 1 });
    await Bun.sleep(300);
    for (let i = 0; i < restarts; i++) {
      const fresh = await baseline(port, true);
      const old = procs.shift()!;
      await old.stop();
      procs.push(fresh);
    }
    await Bun.sleep(300);
    const r = await load.stop();
    for (const p of procs) await p.stop();
    console.log(`  2 reusePort processes, ${restarts} one-by-one restarts:  ${formatLoad(r)}`);
  }
}

async function serveBaseline(): Promise<void> {
  const port = Number(process.argv[3]);
  const server = Bun.serve({
    port,
    hostname: "127.0.0.1",
    reusePort: process.argv[4] === "1",
    async fetch(req) {
      if (req.method === "POST") await req.text();
      return new Response(`hello from ${process.pid}\n`, { headers: { "x-server": String(process.pid) } });
    },
  });
  process.on("SIGTERM", async () => {
    await server.stop(); // graceful: stop accepting, let in-flight requests finish
    process.exit(0);
  });
  console.log(JSON.stringify({ listening: server.port }));
}


if (process.argv[2] === "--serve") await serveBaseline();
else await main();
