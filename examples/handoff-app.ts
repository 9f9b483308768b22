/**
 * A Bun.serve app that hands its listening socket to a fresh copy of itself on SIGHUP
 * (tableflip-style), or through a control socket path. Used by the demo, the bench and the tests.
 *
 *   bun examples/handoff-app.ts                      # generation 0: Bun.serve on 127.0.0.1:0
 *   kill -HUP <pid>                                  # spawn generation 1, hand off, drain, exit
 *
 * Env:
 *   GEN            generation number (set by the parent)
 *   SERVER         what serves: bun-serve (default: bunServe() / adoptBunServe) | node-http (http.Server /
 *                  adoptNodeHttp) | net (a raw net.Server speaking minimal HTTP/1.1 / adoptNetServer, drained
 *                  through the onConnection hook)
 *   ADOPT          override how a successor serves: bun-serve | node-http | bun-listen
 *   CTRL_PATH      also offer the listener on this control socket path (0700 dir, 0600 socket)
 *   REQUEST_PATH   start as a successor that connects to this control path (instead of fd 3)
 *   HANDOFF_TIMEOUT_MS  old side's upgrade timeout (default 10000)
 *   DRAIN_MS       drain hard limit, graceMs (default 3000)
 *   WINDOW_MS      drain window (default 1000)
 *   FAULT          successor fault injection for tests: kill-before-hello | kill-after-hello |
 *                  kill-after-offer | kill-after-adopt | kill-after-adopt-300 (300 ms after adopting) |
 *                  kill-before-ready (after the warm-up) | abort | hang
 *   NEXT_FAULT / FAULT_FILE  the FAULT to give the next successor (FAULT_FILE is re-read per SIGHUP)
 *   WARMUP_MS      successor warm-up before ready (default 0)
 *
 * Every event is one JSON line on stdout: listening, ready, handed-off, handoff-failed, exit.
 */
import { readdirSync, readFileSync } from "node:fs";
// Types only: node:net / node:http are loaded by the SERVER=net / node-http modes that use them
// (loading them costs a successor ~20 ms of start-up: docs/startup.md).
import type * as net from "node:net";
import {
  adoptBunServe,
  adoptNodeHttp,
  adoptBunListen,
  adoptNetServer,
  isHandoffChild,
  requestHandoff,
  serveHandoff,
  HANDOFF_FD_ENV,
  nodeBridge,
  describeSocket,
  bunServe,
  type HandoffServer,
  type DrainConnection,
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
function fetchHandler(_req: Request): Response {
  requests++;
  return new Response(`hello from generation ${gen}\n`, { headers: { "x-server": tag, "content-type": "text/plain" } });
}

/** A minimal HTTP/1.1 server on raw TCP (keep-alive, content-length bodies), for SERVER=net. */
const rawConns = new Map<net.Socket, { buf: Buffer; draining: boolean }>();
function rawHttp(sock: net.Socket): void {
  const st: { buf: Buffer; draining: boolean } = { buf: Buffer.alloc(0), draining: false };
  rawConns.set(sock, st);
  sock.on("error", () => {});
  sock.on("close", () => rawConns.delete(sock));
  sock.on("data", (d: Buffer) => {
    st.buf = st.buf.length ? Buffer.concat([st.buf, d]) : d;
    for (;;) {
      const end = st.buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = st.buf.subarray(0, end).toString("latin1");
      const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (st.buf.length < end + 4 + len) return;
      st.buf = st.buf.subarray(end + 4 + len);
      requests++;
      const close = st.draining || /\r\nconnection:\s*close/i.test(head);
      const body = `hello from generation ${gen}\n`;
      sock.write(`HTTP/1.1 200 OK\r\nx-server: ${tag}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n${close ? "connection: close\r\n" : ""}\r\n${body}`);
      if (close) {
        sock.end();
        return;
      }
    }
  });
}
/**
 * The raw server's drain hook: answer the next request with "connection: close"; an idle connection
 * is shut down after the window only if no request is buffered or unread (else check again later).
 */
function onRawConnection(c: DrainConnection): void {
  const st = rawConns.get(c.socket as net.Socket);
  if (!st) return;
  st.draining = true;
  const check = () => {
    if (!rawConns.has(c.socket as net.Socket)) return;
    if (st.buf.length === 0 && !c.hasUnreadInput()) c.shutdown();
    else setTimeout(check, 20);
  };
  setTimeout(check, Number(process.env.WINDOW_MS ?? 1000));
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
  const tRequest = performance.now();
  const ho = await requestHandoff(process.env.REQUEST_PATH ? { path: process.env.REQUEST_PATH } : {});
  const tOffer = performance.now();
  if (fault === "kill-after-offer") die();
  if (fault === "abort") {
    ho.abort("fault injection: abort");
    log("aborted");
    process.exit(3);
  }
  const l = ho.take("http");
  port = l.port;
  const adopt = process.env.ADOPT ?? process.env.SERVER ?? "bun-serve";
  if (adopt === "net") {
    server = await adoptNetServer(l, (await import("node:net")).createServer(rawHttp));
    kind = "net";
  } else if (adopt === "node-http") {
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
  const tAdopted = performance.now();
  if (fault === "kill-after-adopt") die();
  if (fault === "kill-after-adopt-300") {
    await Bun.sleep(300);
    die();
  }
  if (fault === "hang") await Bun.sleep(1e9);
  const warm = Number(process.env.WARMUP_MS ?? 0);
  if (warm > 0) await Bun.sleep(warm);
  if (fault === "kill-before-ready") die();
  let confirmed = false;
  try {
    ({ confirmed } = await ho.ready());
  } catch (e) {
    log("ready-failed", { error: (e as Error).message });
    process.exit(4);
  }
  const tReady = performance.now();
  // Phase marks for bench/handoff.ts: ms since this process's timeOrigin (its start).
  const phases = { appStart: t0, requested: tRequest, offer: tOffer, adopted: tAdopted, committed: tReady, timeOrigin: performance.timeOrigin };
  log("ready", { port, kind, fallback, confirmed, startupMs: Math.round(tReady - t0), fds: fdCount(), phases });
} else {
  const mode = process.env.SERVER ?? "bun-serve";
  if (mode === "net" || mode === "node-http") {
    const s = mode === "net" ? (await import("node:net")).createServer(rawHttp) : (await import("node:http")).createServer(nodeBridge(fetchHandler));
    await new Promise<void>((r) => s.listen(Number(process.env.PORT ?? 0), "127.0.0.1", r));
    server = s;
    port = (s.address() as net.AddressInfo).port;
    kind = mode;
  } else {
    const s = bunServe({ port: Number(process.env.PORT ?? 0), hostname: "127.0.0.1", fetch: fetchHandler });
    server = s;
    port = s.port!;
  }
  log("listening", { port, kind, fds: fdCount() });
}

let ho: HandoffServer = offer();
function offer(): HandoffServer {
  return serveHandoff({ http: server as never }, {
    path: process.env.CTRL_PATH || undefined,
    timeoutMs: Number(process.env.HANDOFF_TIMEOUT_MS ?? 10_000),
    onFailure: (e) => log("handoff-failed", { error: e.message, code: (e as { code?: string }).code, fds: fdCount() }),
  });
}

async function retire(latencyMs: number, successor: number, stoppedAcceptingAt: number): Promise<never> {
  log("handed-off", { successor, latencyMs: Math.round(latencyMs * 10) / 10, requests, stoppedAcceptingAt });
  const d = await ho.drain({ graceMs: Number(process.env.DRAIN_MS ?? 3000), hardMs: Number(process.env.DRAIN_MS ?? 3000) + 2000, windowMs: Number(process.env.WINDOW_MS ?? 1000), onConnection: onRawConnection });
  log("exit", { requests, forced: d.forced, at: performance.timeOrigin + performance.now() });
  process.exit(0);
}

if (process.env.CTRL_PATH) {
  ho.upgraded.then((u) => retire(u.latencyMs, u.pid, u.stoppedAcceptingAt)).catch(() => {});
}

async function onHup(): Promise<void> {
  await started;
  if (busy) return;
  busy = true;
  const nextFault = process.env.FAULT_FILE ? readFileSync(process.env.FAULT_FILE, "utf8").trim() : (process.env.NEXT_FAULT ?? "");
  const childEnv: Record<string, string> = { GEN: String(gen + 1), FAULT: nextFault };
  const r = await ho.spawn([process.execPath, import.meta.path], { env: childEnv });
  if (r.ok) return retire(r.latencyMs, r.pid, r.result.stoppedAcceptingAt);
  log("spawn-failed", { error: r.error.message, fds: fdCount() });
  if (ho.state === "closed") ho = offer();
  busy = false;
}

markStarted();
