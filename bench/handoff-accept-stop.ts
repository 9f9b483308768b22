/**
 * Where to stop accepting: late accepts after AcceptGate.pause() run from a request handler, from a
 * microtask, and from a fresh setImmediate (what pauseGates does).
 *
 *   bun bench/handoff-accept-stop.ts [rounds=50]
 *
 * A bunServe() server in this process is loaded by new-connection workers of the non-retrying client
 * running in a child process. Each round pauses the gate in one of the three ways, records the peer
 * ports of every server-side connection open at that moment, and for 30 ms counts requests the
 * handler serves from any other peer port: connections this process accepted after it stopped
 * accepting. The gate is resumed after each round. Loopback only, bounded.
 */
import * as sys from "../src/sys.ts";
import { AcceptGate, bunServe, connectionFds, describeSocket } from "../src/handoff/index.ts";
import { resolveSource } from "../src/handoff/sources.ts";

const ROUNDS = Number(process.argv[2] ?? 50);
type Mode = "handler" | "microtask" | "setImmediate";
let pending: Mode | null = null;
let pausedAt: Set<number> | null = null;
let lateNow = 0;
let gate!: AcceptGate;
const peerPorts = (fds: number[]) =>
  new Set(
    fds.map((fd) => {
      try {
        const a = sys.getpeername(fd);
        return a.family === "ipv4" || a.family === "ipv6" ? a.port : -1;
      } catch {
        return -1;
      }
    }),
  );

const server = bunServe({
  port: 0,
  hostname: "127.0.0.1",
  fetch(req: Request, srv: Bun.Server<undefined>) {
    if (pending === "handler") {
      pending = null;
      gate.pause();
      pausedAt = peerPorts(connectionFds(info));
    } else if (pausedAt && !pausedAt.has(srv.requestIP(req)?.port ?? -1)) lateNow++;
    return new Response("ok");
  },
});
const info = describeSocket(resolveSource("http", server as never).fd)!;
gate = new AcceptGate(resolveSource("http", server as never).fd);

const loadScript = `
import { httpLoad } from ${JSON.stringify(new URL("../test/helpers/http-load.ts", import.meta.url).pathname)};
const l = httpLoad({ port: ${server.port}, fresh: 16, requestTimeoutMs: 20000 });
process.stdin.on("data", async () => { const r = await l.stop(); console.log(JSON.stringify(r.counts)); process.exit(0); });
`;
const child = Bun.spawn([process.execPath, "-e", loadScript], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
await Bun.sleep(500);

const late: Record<Mode, number[]> = { handler: [], microtask: [], setImmediate: [] };
const modes: Mode[] = ["handler", "microtask", "setImmediate"];
for (let i = 0; i < ROUNDS * modes.length; i++) {
  const mode = modes[i % modes.length]!;
  pausedAt = null;
  lateNow = 0;
  if (mode === "handler") pending = "handler";
  else if (mode === "microtask") {
    // a continuation of an awaited promise that settles inside the loop's I/O processing
    await fetch(`http://127.0.0.1:${server.port}/`).then(async (r) => {
      await r.text();
      gate.pause();
      pausedAt = peerPorts(connectionFds(info));
    });
  } else {
    await new Promise<void>((r) => setImmediate(r));
    gate.pause();
    pausedAt = peerPorts(connectionFds(info));
  }
  while (pausedAt === null) await Bun.sleep(1);
  await Bun.sleep(30);
  late[mode].push(lateNow);
  pausedAt = null;
  gate.resume();
  await Bun.sleep(20);
}
child.stdin.write("stop\n");
const counts = (await new Response(child.stdout).text()).trim();
await server.stop(true);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
console.log(`${ROUNDS} pauses per mode under 16 new-connection workers (client in a child process): ${counts}`);
for (const m of modes) console.log(`  pause from ${m.padEnd(12)}: ${sum(late[m])} late accepts (rounds with any: ${late[m].filter((x) => x > 0).length}/${ROUNDS})`);
