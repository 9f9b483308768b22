/**
 * Zero-downtime handoff demo (`npm run demo`): a Bun.serve app under a bounded loopback load
 * (fresh-connection and keep-alive clients) is handed off to fresh processes several times.
 * Prints requests ok / failed per handoff, the handoff latency, and the post-handoff throughput
 * compared with a fresh Bun.serve in the same run.
 *
 *   bun examples/handoff-demo.ts [handoffs=5]
 */
import { AppChain, compareThroughput } from "./handoff-harness.ts";
// The load generator is this repository's test tool, not part of the package API.
import { runLoad, diffReport } from "../src/handoff/loadgen.ts";

const N = Number(process.argv[2] ?? 5);
const chain = new AppChain({ DRAIN_MS: "1500" });
let fresh: AppChain | null = null;
try {
  const first = await chain.start();
  console.log(`generation 0 (pid ${first.pid}): Bun.serve on http://127.0.0.1:${chain.port}/`);
  const url = `http://127.0.0.1:${chain.port}/`;
  const loads = [runLoad({ url, mode: "fresh", concurrency: 4, tagHeader: "x-server" }), runLoad({ url, mode: "keepalive", concurrency: 4, tagHeader: "x-server" })];
  const snap = () => {
    const [a, b] = loads.map((l) => l.snapshot());
    return { a: a!, b: b! };
  };
  await Bun.sleep(500);
  console.log(`load: 4 fresh-connection + 4 keep-alive clients, continuous\n`);
  console.log("handoff  new pid  served by       latency(ms)  requests ok  failed  (fresh / keep-alive)");
  let prev = snap();
  const latencies: number[] = [];
  for (let i = 1; i <= N; i++) {
    const { ready, handedOff } = await chain.handoff();
    await Bun.sleep(400);
    const now = snap();
    const fa = diffReport(prev.a, now.a), fb = diffReport(prev.b, now.b);
    prev = now;
    latencies.push(handedOff.latencyMs as number);
    console.log(
      `${String(i).padStart(7)}  ${String(ready.pid).padStart(7)}  ${String(ready.kind).padEnd(14)}  ${String(handedOff.latencyMs).padStart(11)}  ${String(fa.ok + fb.ok).padStart(11)}  ${String(fa.failed + fb.failed).padStart(6)}  (${fa.ok}/${fb.ok}${fa.failed + fb.failed ? " errors " + JSON.stringify({ ...fa.errors, ...fb.errors }) : ""})`,
    );
  }
  const [ra, rb] = await Promise.all(loads.map((l) => l.stop()));
  const total = { ok: ra!.ok + rb!.ok, failed: ra!.failed + rb!.failed };
  console.log(`\ntotal: ${total.ok} requests ok, ${total.failed} failed ${total.failed ? JSON.stringify({ ...ra!.errors, ...rb!.errors }) : "(0 refused, 0 reset)"}`);
  const sorted = [...latencies].sort((p, q) => p - q);
  console.log(`handoff latency (spawn -> successor serving and acknowledged): median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted[sorted.length - 1]} ms`);

  fresh = new AppChain({});
  await fresh.start();
  const t = await compareThroughput(url, `http://127.0.0.1:${fresh.port}/`);
  console.log(`throughput (keep-alive, 32 clients): after ${N} handoffs ${Math.round(t.adopted)} req/s vs fresh Bun.serve ${Math.round(t.fresh)} req/s -> ratio ${t.ratio.toFixed(2)}x`);
  if (total.failed > 0) process.exitCode = 1;
} finally {
  await chain.close();
  await fresh?.close();
}
