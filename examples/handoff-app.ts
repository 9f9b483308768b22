/**
 * A Bun.serve app that hands its listening socket to a fresh copy of itself on SIGHUP
 * (tableflip-style), or through a control socket path. Used by the demo, the bench and the tests.
 *
 *   bun examples/handoff-app.ts                      # generation 0: Bun.serve on 127.0.0.1:0
 *   kill -HUP <pid>                                  # spawn generation 1, hand off, drain, exit
 *
 * Env:
 *   GEN            generation number (set by the parent)
 *   ADOPT          how a successor serves: bun-serve (default) | node-http | bun-listen
 *   CTRL_PATH      also offer the listener on this control socket path (0700 dir, 0600 socket)
 *   REQUEST_PATH   start as a successor that connects to this control path (instead of fd 3)
 *   HANDOFF_TIMEOUT_MS  old side's upgrade timeout (default 10000)
 *   DRAIN_MS       graceful drain limit (default 3000)
 *   FAULT          successor fault injection for tests: kill-before-hello | kill-after-hello |
 *                  kill-after-offer | kill-after-adopt | abort | hang
 *   NEXT_FAULT / FAULT_FILE  the FAULT to give the next successor (FAULT_FILE is re-read per SIGHUP)
 *   WARMUP_MS      successor warm-up before ready (default 0)
 *
 * Every event is one JSON line on stdout: listening, ready, handed-off, handoff-failed, exit.
 */
import { readdirSync, readFileSync } from "node:fs";
import {
  adoptBunServe,
  adoptNodeHttp,
  adoptBunListen,
  isHandoffChild,
  requestHandoff,
  serveHandoff,
  HANDOFF_FD_ENV,
  nodeBridge,
  describeSocket,
  type HandoffServer,
} from "unix-ancillary/handoff";
// Fault injection only (UA_FAULT=garbage...): the wire codec is the library's internal module.
import { encodeFrame, FrameType } from "../src/handoff/protocol.ts";

const gen = Number(process.env.GEN ?? 0);
const t0 = performance.now();
const log = (event: string, extra: Record<string, unknown> = {}) => console.log(JSON.stringify({ event, gen, pid: process.pid, ...extra }));
/** Open fds, not counting accepted TCP connections (which come and go with the load). */
const fdCount = () =>
  readdirSync("/proc/self/fd")
    .map(Number)
    .filter((fd) => {
      const d = describeSocket(fd);
      return !(d && d.family !== "unix" && d.type === "stream" && !d.listening);
    }).length - 1;

// Registered first: a SIGHUP that arrives while we start up must not kill us (default action).
let busy = false;
let markStarted!: () => void;
const started = new Promise<void>((r) => (markStarted = r));
process.on("SIGHUP", () => void onHup());

let requests = 0;
const tag = `${gen}:${process.pid}`;
function fetchHandler(req: Request): Response {
  requests++;
  return new Response(`hello from generation ${gen}\n`, { headers: { "x-server": tag, "content-type": "text/plain" } });
}

const fault = process.env.FAULT ?? "";
const die = () => process.kill(process.pid, "SIGKILL");

let server: unknown; // what we offer to the next generation
let port: number;
let kind = "bun-serve";
let fallback = false;

if (isHandoffChild() || process.env.REQUEST_PATH) {
  if (fault === "kill-before-hello") die();
  if (fault === "kill-after-hello") {
    // Speak the first protocol step by hand, then die.
    const { UnixSeqpacket, OwnedFd } = await import("../src/index.ts");
    const fd = Number(process.env[HANDOFF_FD_ENV]);
    const s = UnixSeqpacket.fromFd(OwnedFd.from(fd));
    s.sendFdsSync(encodeFrame(FrameType.Hello, { pid: process.pid }));
    await Bun.sleep(20);
    die();
  }
  const ho = await requestHandoff(process.env.REQUEST_PATH ? { path: process.env.REQUEST_PATH } : {});
  if (fault === "kill-after-offer") die();
  if (fault === "abort") {
    ho.abort("fault injection: abort");
    log("aborted");
    process.exit(3);
  }
  const l = ho.take("http");
  port = l.port;
  const adopt = process.env.ADOPT ?? "bun-serve";
  if (adopt === "node-http") {
    const a = await adoptNodeHttp(l, nodeBridge(fetchHandler));
    server = a;
    kind = "node-http";
  } else if (adopt === "bun-listen") {
    server = adoptBunListen(l, { socket: { open(s: any) { s.end("HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n"); }, data() {} } });
    kind = "bun-listen";
  } else {
    const a = await adoptBunServe(l, { fetch: fetchHandler });
    server = a;
    kind = a.kind;
    fallback = a.fallback;
  }
  if (fault === "kill-after-adopt") die();
  if (fault === "hang") await Bun.sleep(1e9);
  const warm = Number(process.env.WARMUP_MS ?? 0);
  if (warm > 0) await Bun.sleep(warm);
  let confirmed = false;
  try {
    ({ confirmed } = await ho.ready());
  } catch (e) {
    log("ready-failed", { error: (e as Error).message });
    process.exit(4);
  }
  log("ready", { port, kind, fallback, confirmed, startupMs: Math.round(performance.now() - t0), fds: fdCount() });
} else {
  const s = Bun.serve({ port: Number(process.env.PORT ?? 0), hostname: "127.0.0.1", fetch: fetchHandler });
  server = s;
  port = s.port!;
  log("listening", { port, fds: fdCount() });
}

let ho: HandoffServer = offer();
function offer(): HandoffServer {
  return serveHandoff({ http: server as never }, {
    path: process.env.CTRL_PATH || undefined,
    timeoutMs: Number(process.env.HANDOFF_TIMEOUT_MS ?? 10_000),
    onFailure: (e) => log("handoff-failed", { error: e.message, code: (e as { code?: string }).code, fds: fdCount() }),
  });
}

async function retire(latencyMs: number, successor: number): Promise<never> {
  log("handed-off", { successor, latencyMs: Math.round(latencyMs * 10) / 10, requests });
  await ho.drain({ graceMs: Number(process.env.DRAIN_MS ?? 3000), hardMs: Number(process.env.DRAIN_MS ?? 3000) + 2000 });
  log("exit", { requests });
  process.exit(0);
}

if (process.env.CTRL_PATH) {
  ho.upgraded.then((u) => retire(u.latencyMs, u.pid)).catch(() => {});
}

async function onHup(): Promise<void> {
  await started;
  if (busy) return;
  busy = true;
  const nextFault = process.env.FAULT_FILE ? readFileSync(process.env.FAULT_FILE, "utf8").trim() : (process.env.NEXT_FAULT ?? "");
  const childEnv: Record<string, string> = { GEN: String(gen + 1), FAULT: nextFault };
  const r = await ho.spawn([process.execPath, import.meta.path], { env: childEnv });
  if (r.ok) return retire(r.latencyMs, r.pid);
  log("spawn-failed", { error: r.error.message, fds: fdCount() });
  if (ho.state === "closed") ho = offer();
  busy = false;
}

markStarted();
