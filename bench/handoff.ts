/**
 * Handoff reliability + performance bench (loopback only, bounded), measured with the non-retrying
 * HTTP/1.1 client (test/helpers/http-load.ts):
 *   bun bench/handoff.ts [count=50] [server=bun-serve|node-http|net]
 *
 * `count` consecutive process handoffs of examples/handoff-app.ts under continuous load (16 busy
 * keep-alive connections, GET+POST, + 8 new-connection workers). Reports requests by outcome, the
 * handoff latency (old side: upgrader accepted -> serving frame = commit; outside: SIGHUP -> the
 * successor's ready event), commit -> old process exit (drain window 1 s included), the fd count of
 * every generation, and post-handoff keep-alive throughput against a fresh Bun.serve measured
 * interleaved in the same run. Exit code 1 on any lost request.
 * Ends with the goal row (bench/goals.ts): SIGHUP -> ready p50, also as a ratio to a bare `bun -e 0`
 * spawned after every handoff under the same load (the 40 ms goal was set where bare Bun took 7 ms).
 */
import { AppChain, compareThroughput } from "../examples/handoff-harness.ts";
import { formatLoad, httpLoad } from "../test/helpers/http-load.ts";
import { GOAL_MACHINE_BARE_BUN_MS, printGoals } from "./goals.ts";

const COUNT = Number(process.argv[2] ?? 50);
const SERVER = process.argv[3] ?? "bun-serve";
const chain = new AppChain({ DRAIN_MS: "3000", SERVER });
let fresh: AppChain | null = null;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const fmt = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(1)} ms, p95 ${pct(xs, 95).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms`;
try {
  await chain.start();
  const load = httpLoad({ port: chain.port, keepalive: 16, fresh: 8 });
  const inner: number[] = [], outer: number[] = [], fds: number[] = [], kinds: Record<string, number> = {};
  const phases: Record<string, number[]> = {};
  const commits = new Map<number, number>();
  const bare: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < COUNT; i++) {
    await Bun.sleep(50);
    const { ready, handedOff, wallMs, sighupAt } = await chain.handoff();
    const ph = ready.phases as { appStart: number; requested: number; offer: number; adopted: number; committed: number; timeOrigin: number } | undefined;
    if (ph) {
      const add = (k: string, v: number) => (phases[k] ??= []).push(v);
      add("1 SIGHUP -> successor process started (old side: signal, spawn)", ph.timeOrigin - sighupAt);
      add("2 process start -> app code runs (Bun start-up, imports)", ph.appStart);
      add("3 app code -> requestHandoff called (app's own start-up)", ph.requested - ph.appStart);
      add("4 requestHandoff: connect, peer checks, hello -> offer with the fds", ph.offer - ph.requested);
      add("5 adopt (Bun.serve + epoll re-registration + self-check)", ph.adopted - ph.offer);
      add("6 ready() -> commit confirmed (done, serving)", ph.committed - ph.adopted);
      add("= total, SIGHUP -> committed", ph.timeOrigin + ph.committed - sighupAt);
    }
    inner.push(handedOff.latencyMs as number);
    outer.push(wallMs);
    fds.push(ready.fds as number);
    commits.set(handedOff.pid, handedOff.stoppedAcceptingAt as number);
    kinds[String(ready.kind)] = (kinds[String(ready.kind)] ?? 0) + 1;
    // The machine's speed right now, under the same load: one bare Bun process start -> exit.
    const b0 = performance.now();
    await Bun.spawn([process.execPath, "-e", "0"], { stdout: "ignore", stderr: "ignore" }).exited;
    bare.push(performance.now() - b0);
    if ((i + 1) % 10 === 0) console.log(`${i + 1}/${COUNT} handoffs: ${formatLoad(load.snapshot())}`);
  }
  await Bun.sleep(300);
  const r = await load.stop();
  const elapsed = (performance.now() - t0) / 1000;
  // commit -> exit of every old generation (the last ones may still be draining: wait for them)
  const exits: number[] = [];
  for (const [pid, at] of commits) {
    const e = await chain.next((e) => e.pid === pid && e.event === "exit", 15_000).catch(() => null);
    if (e) exits.push((e.at as number) - at);
  }
  console.log(`\n${COUNT} handoffs in ${elapsed.toFixed(1)} s, served by: ${JSON.stringify(kinds)}`);
  console.log(`requests (16 keep-alive GET+POST + 8 new-connection workers, non-retrying): ${formatLoad(r)}`);
  console.log(`handoff latency, old side (upgrader accepted -> serving = commit): ${fmt(inner)}`);
  console.log(`handoff latency, outside (SIGHUP -> successor ready event, spawn included): ${fmt(outer)}`);
  console.log("handoff phases (successor's marks against the SIGHUP time; medians and p95):");
  for (const [k, v] of Object.entries(phases)) console.log(`  ${k.padEnd(70)} p50 ${pct(v, 50).toFixed(1).padStart(6)} ms   p95 ${pct(v, 95).toFixed(1).padStart(6)} ms`);
  console.log(`commit -> old process exit (drain window 1000 ms included): ${fmt(exits)} (${exits.length}/${commits.size} exits seen)`);
  console.log(`fd count per generation (excl. client connections): min ${Math.min(...fds)}, max ${Math.max(...fds)} (${new Set(fds).size === 1 ? "stable" : "VARIES"})`);
  fresh = new AppChain({});
  await fresh.start();
  const t = await compareThroughput(chain.port, fresh.port, 700, 9);
  console.log(`throughput (keep-alive GET, 32 connections, median of 9 alternating 0.7 s pairs): post-handoff ${Math.round(t.adopted)} req/s, fresh Bun.serve ${Math.round(t.fresh)} req/s -> ${t.ratio.toFixed(2)}x`);
  const goalRatio = 40 / GOAL_MACHINE_BARE_BUN_MS;
  const readyRatio = pct(outer, 50) / pct(bare, 50);
  printGoals([
    {
      what: `handoff SIGHUP -> successor ready p50 (${SERVER}, under load)`,
      measured: `${pct(outer, 50).toFixed(1)} ms = ${readyRatio.toFixed(1)}× a bare \`bun -e 0\` (${pct(bare, 50).toFixed(1)} ms, same load)`,
      goal: `≤ 40 ms on a quiet machine where bare Bun takes ${GOAL_MACHINE_BARE_BUN_MS} ms (${goalRatio.toFixed(1)}× bare)`,
      met: readyRatio <= goalRatio,
    },
  ]);
  if (r.lost > 0 || new Set(fds).size !== 1) process.exitCode = 1;
} finally {
  await chain.close();
  await fresh?.close();
}
