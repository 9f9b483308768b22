/**
 * Handoff reliability + performance bench (loopback only, bounded):
 *   bun bench/handoff.ts [count=100] [adopt=bun-serve|node-http]
 *
 * `count` consecutive process handoffs of examples/handoff-app.ts under continuous load
 * (4 fresh-connection + 4 keep-alive clients). Reports requests ok/failed by kind, the handoff
 * latency (old side: spawn -> successor adopted, warmed up and acknowledged; and SIGHUP -> ready as
 * seen from outside), the fd count of every generation, and the post-handoff keep-alive throughput
 * against a fresh Bun.serve measured interleaved in the same run. Exit code 1 on any failed request.
 */
import { AppChain, compareThroughput } from "../examples/handoff-harness.ts";
import { runLoad } from "../test/helpers/fetch-load.ts";

const COUNT = Number(process.argv[2] ?? 100);
const ADOPT = process.argv[3] ?? "bun-serve";
const chain = new AppChain({ DRAIN_MS: "1500", ADOPT });
let fresh: AppChain | null = null;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
try {
  await chain.start();
  const url = `http://127.0.0.1:${chain.port}/`;
  const freshLoad = runLoad({ url, mode: "fresh", concurrency: 4 });
  const keepLoad = runLoad({ url, mode: "keepalive", concurrency: 4 });
  const inner: number[] = [], outer: number[] = [], fds: number[] = [], kinds: Record<string, number> = {};
  const t0 = performance.now();
  for (let i = 0; i < COUNT; i++) {
    await Bun.sleep(50);
    const { ready, handedOff, wallMs } = await chain.handoff();
    inner.push(handedOff.latencyMs as number);
    outer.push(wallMs);
    fds.push(ready.fds as number);
    kinds[String(ready.kind)] = (kinds[String(ready.kind)] ?? 0) + 1;
    if ((i + 1) % 10 === 0) {
      const a = freshLoad.snapshot(), b = keepLoad.snapshot();
      console.log(`${i + 1}/${COUNT} handoffs, ${a.ok + b.ok} ok, ${a.failed + b.failed} failed`);
    }
  }
  await Bun.sleep(300);
  const f = await freshLoad.stop(), k = await keepLoad.stop();
  const elapsed = (performance.now() - t0) / 1000;
  console.log(`\n${COUNT} handoffs in ${elapsed.toFixed(1)} s, adopted by: ${JSON.stringify(kinds)}`);
  console.log(`fresh-connection clients: ${f.ok} ok, ${f.failed} failed ${JSON.stringify(f.errors)}`);
  console.log(`keep-alive clients:       ${k.ok} ok, ${k.failed} failed ${JSON.stringify(k.errors)}`);
  console.log(`handoff latency, old side (spawn -> acknowledged ready): p50 ${pct(inner, 50).toFixed(1)} ms, p95 ${pct(inner, 95).toFixed(1)} ms, max ${Math.max(...inner).toFixed(1)} ms`);
  console.log(`handoff latency, outside (SIGHUP -> successor ready event): p50 ${pct(outer, 50).toFixed(1)} ms, p95 ${pct(outer, 95).toFixed(1)} ms, max ${Math.max(...outer).toFixed(1)} ms`);
  console.log(`fd count per generation (excl. client connections): min ${Math.min(...fds)}, max ${Math.max(...fds)} (${new Set(fds).size === 1 ? "stable" : "VARIES"})`);
  fresh = new AppChain({});
  await fresh.start();
  const t = await compareThroughput(url, `http://127.0.0.1:${fresh.port}/`, 2000, 3);
  console.log(`throughput (keep-alive, 32 clients, median of 3 interleaved 2 s runs): post-handoff ${Math.round(t.adopted)} req/s, fresh Bun.serve ${Math.round(t.fresh)} req/s -> ${t.ratio.toFixed(2)}x`);
  if (f.failed + k.failed > 0 || new Set(fds).size !== 1) process.exitCode = 1;
} finally {
  await chain.close();
  await fresh?.close();
}
