/**
 * Zero-downtime handoff demo (`npm run demo`): a bunServe() app under a bounded loopback load from a
 * non-retrying HTTP/1.1 client (8 keep-alive connections sending GET and POST back to back, plus 4
 * new-connection workers) is handed off to fresh processes several times. Prints, per handoff, the
 * requests by outcome (ok / refused / reset / eof / timeout / bad status), the handoff latency, and at
 * the end the post-handoff throughput compared with a fresh Bun.serve in the same run.
 *
 *   bun examples/handoff-demo.ts [handoffs=5]
 */
import { AppChain, compareThroughput } from "./handoff-harness.ts";
// The load generator is this repository's test tool (a non-retrying HTTP/1.1 client), not package API.
import { diffLoad, httpLoad, type HttpLoadReport } from "../test/helpers/http-load.ts";

const N = Number(process.argv[2] ?? 5);
const chain = new AppChain({ DRAIN_MS: "3000" });
let fresh: AppChain | null = null;
const row = (r: HttpLoadReport) => [r.counts.ok, r.counts.refused, r.counts.reset, r.counts.eof, r.counts.timeout, r.counts.badStatus].map((x) => String(x).padStart(7)).join("");
try {
  const first = await chain.start();
  console.log(`generation 0 (pid ${first.pid}): bunServe() on http://127.0.0.1:${chain.port}/`);
  const load = httpLoad({ port: chain.port, keepalive: 8, fresh: 4 });
  await Bun.sleep(500);
  console.log(`load: 8 keep-alive (GET+POST) + 4 new-connection workers, non-retrying, continuous\n`);
  console.log(`handoff  new pid  served by   latency(ms)       ok refused  reset    eof timeout badstat`);
  let prev = load.snapshot();
  const latencies: number[] = [];
  for (let i = 1; i <= N; i++) {
    const { ready, handedOff } = await chain.handoff();
    await Bun.sleep(400);
    const now = load.snapshot();
    const d = diffLoad(prev, now);
    prev = now;
    latencies.push(handedOff.latencyMs as number);
    console.log(`${String(i).padStart(7)}  ${String(ready.pid).padStart(7)}  ${String(ready.kind).padEnd(10)}  ${String(handedOff.latencyMs).padStart(11)}${row(d)}`);
  }
  const total = await load.stop();
  console.log(`${"total".padStart(7)}  ${"".padStart(7)}  ${"".padEnd(10)}  ${"".padStart(11)}${row(total)}`);
  const sorted = [...latencies].sort((p, q) => p - q);
  console.log(`\nlost requests: ${total.lost}`);
  console.log(`handoff latency (upgrader accepted -> successor serving, old side): median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted[sorted.length - 1]} ms`);

  fresh = new AppChain({});
  await fresh.start();
  const t = await compareThroughput(chain.port, fresh.port);
  console.log(`throughput (keep-alive GET, 32 connections): after ${N} handoffs ${Math.round(t.adopted)} req/s vs fresh Bun.serve ${Math.round(t.fresh)} req/s -> ratio ${t.ratio.toFixed(2)}x`);
  if (total.lost > 0) process.exitCode = 1;
} finally {
  await chain.close();
  await fresh?.close();
}
