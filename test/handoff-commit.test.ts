/**
 * The commit of a handoff (protocol v2), in one process with a hand-driven successor:
 *   - after ready the old side stops accepting (AcceptGate) and sends done; connections queue in the
 *     kernel, none is refused;
 *   - a successor that dies between done and serving: the old side accepts again (the queued
 *     connection is answered by it) and a next attempt succeeds;
 *   - requireAdopted: "all" (default) aborts when an offered listener is not adopted; a successor that
 *     wants nothing is refused; "any" commits with one;
 *   - onUpgrade runs under the attempt's deadline: a never-settling callback aborts the attempt and
 *     frees the slot (no permanent ERR_UA_BUSY);
 *   - numeric options are validated like Node (ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE).
 */
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import * as net from "node:net";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UnixSeqpacket, type OwnedFd } from "../src/index.ts";
import * as sys from "../src/sys.ts";
import { bunServe, requestHandoff, serveHandoff, type HandoffServer } from "../src/handoff/index.ts";
import { decodeFrame, encodeFrame, FrameType } from "../src/handoff/protocol.ts";

let base = "";
let n = 0;
const cleanups: Array<() => unknown> = [];
beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), "ua-ho-commit-"));
  chmodSync(base, 0o700);
  return () => rmSync(base, { recursive: true, force: true });
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const ctlPath = () => join(base, `c${n++}`, "ctl.sock");

function oldServer(text = "old"): Bun.Server<undefined> {
  const s = bunServe<undefined>({ port: 0, hostname: "127.0.0.1", fetch: () => new Response(text) });
  cleanups.push(() => s.stop(true));
  return s;
}
function track(ho: HandoffServer): HandoffServer {
  cleanups.push(() => ho.close());
  return ho;
}

/** A raw HTTP request on a new connection; resolves with the body or "timeout"/"error". */
function request(port: number, ms: number): { result: Promise<string>; sock: net.Socket } {
  const sock = net.connect(port, "127.0.0.1");
  const result = new Promise<string>((resolve) => {
    let data = "";
    const t = setTimeout(() => resolve(`timeout${data ? " after " + data : ""}`), ms);
    sock.on("connect", () => sock.write("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"));
    sock.on("data", (d) => (data += d));
    sock.on("close", () => {
      clearTimeout(t);
      resolve(data.split("\r\n\r\n")[1] ?? `closed: ${data}`);
    });
    sock.on("error", (e) => {
      clearTimeout(t);
      resolve(`error ${e.message}`);
    });
  });
  return { result, sock };
}

/** Reads one frame without blocking the event loop (both ends live in this process). */
async function recvFrame(s: UnixSeqpacket): Promise<{ type: number; payload: Record<string, unknown>; fds: OwnedFd[] }> {
  const end = performance.now() + 5000;
  while (sys.pollOne(s.fd, 1, 0) === 0 && performance.now() < end) await Bun.sleep(1);
  const got = s.recvFdsSync(64, { bufferSize: 70000 });
  if (got.data.byteLength === 0) return { type: 0, payload: {}, fds: got.fds };
  const f = decodeFrame(got.data, got.fds.length);
  return { ...f, fds: got.fds };
}

describe("commit: stop accepting at done, accept again if the successor dies before serving", () => {
  test("between done and serving nothing is accepted or refused; the successor dies; the old side answers the queued connection", async () => {
    const old = oldServer("old");
    const path = ctlPath();
    const ho = track(serveHandoff({ http: old }, { path, timeoutMs: 5000 }));
    const s = UnixSeqpacket.connectSync(path);
    s.sendFdsSync(encodeFrame(FrameType.Hello, { pid: process.pid }));
    const offer = await recvFrame(s);
    expect(offer.type).toBe(FrameType.Offer);
    expect(offer.fds.length).toBe(1);
    s.sendFdsSync(encodeFrame(FrameType.Ready, { pid: process.pid, adopted: ["http"] }));
    const done = await recvFrame(s);
    expect(done.type).toBe(FrameType.Done);
    // The old side has stopped accepting, and this fake successor never accepts: the connection waits.
    const q = request(old.port!, 5000);
    await Bun.sleep(300);
    expect(await Promise.race([q.result, Bun.sleep(0).then(() => "pending")])).toBe("pending"); // not accepted, not refused
    expect(ho.state).toBe("upgrading");
    // Die before serving: the channel closes, the received fd goes with it.
    for (const fd of offer.fds) fd.close();
    s.close();
    const r = await ho.nextAttempt();
    expect(r.ok).toBe(false);
    expect(ho.state).toBe("idle");
    expect(await q.result).toBe("old"); // the queued connection is answered by the old side
    expect(await request(old.port!, 3000).result).toBe("old");
    // A next, complete attempt commits.
    const h = await requestHandoff({ path });
    h.take("http").fd.close();
    expect((await h.ready()).confirmed).toBe(true);
    expect((await ho.upgraded).stoppedAcceptingAt).toBeGreaterThan(0);
  });

  test("requireAdopted: an offered listener left unadopted aborts by default and the old side keeps serving; 'any' commits", async () => {
    const a = oldServer("a");
    const b = oldServer("b");
    const path = ctlPath();
    const ho = track(serveHandoff({ a, b }, { path }));
    const h = await requestHandoff({ path });
    h.take("a").fd.close();
    await expect(h.ready()).rejects.toMatchObject({ code: "ERR_UA_ABORTED", message: expect.stringContaining('did not adopt "b"') });
    expect(ho.state).toBe("idle");
    expect(await request(a.port!, 3000).result).toBe("a");
    expect(await request(b.port!, 3000).result).toBe("b");
    // A successor that wants nothing that exists is refused before any fd is sent.
    await expect(requestHandoff({ path, want: ["nope"] })).rejects.toMatchObject({ code: "ERR_UA_PEER_REJECTED" });
    expect(ho.state).toBe("idle");
    ho.close();
    const path2 = ctlPath();
    const ho2 = track(serveHandoff({ a, b }, { path: path2, requireAdopted: "any" }));
    const h2 = await requestHandoff({ path: path2 });
    h2.take("a").fd.close();
    expect((await h2.ready()).confirmed).toBe(true);
    expect((await ho2.upgraded).adopted).toEqual(["a"]);
  });

  test("onUpgrade that never settles: the attempt times out at timeoutMs and the slot is free again", async () => {
    const old = oldServer();
    const path = ctlPath();
    let calls = 0;
    const ho = track(serveHandoff({ http: old }, { path, timeoutMs: 300, onUpgrade: () => (++calls === 1 ? new Promise<boolean>(() => {}) : true) }));
    const t0 = performance.now();
    await expect(requestHandoff({ path })).rejects.toMatchObject({ code: "ERR_UA_TIMEOUT" });
    expect(performance.now() - t0).toBeLessThan(5000); // generous: it must not wait for the callback
    expect(ho.state).toBe("idle");
    const h = await requestHandoff({ path });
    h.take("http").fd.close();
    expect((await h.ready()).confirmed).toBe(true);
    expect(calls).toBe(2);
  });
});

describe("option validation", () => {
  test("requestHandoff and serveHandoff reject bad numbers like Node", async () => {
    await expect(requestHandoff({ fd: 2.5 })).rejects.toMatchObject({ code: "ERR_OUT_OF_RANGE" });
    await expect(requestHandoff({ fd: -1 })).rejects.toMatchObject({ code: "ERR_OUT_OF_RANGE" });
    await expect(requestHandoff({ fd: "3" as never })).rejects.toMatchObject({ code: "ERR_INVALID_ARG_TYPE" });
    await expect(requestHandoff({ path: "/nonexistent", timeoutMs: 0 })).rejects.toMatchObject({ code: "ERR_OUT_OF_RANGE" });
    await expect(requestHandoff({ path: "/nonexistent", timeoutMs: NaN })).rejects.toMatchObject({ code: "ERR_OUT_OF_RANGE" });
    const old = oldServer();
    expect(() => serveHandoff({ http: old }, { idlePollMs: -1 })).toThrow(expect.objectContaining({ code: "ERR_OUT_OF_RANGE" }));
    expect(() => serveHandoff({ http: old }, { idlePollMs: 1.5 })).toThrow(expect.objectContaining({ code: "ERR_OUT_OF_RANGE" }));
    expect(() => serveHandoff({ http: old }, { timeoutMs: "5" as never })).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARG_TYPE" }));
    expect(() => serveHandoff({ http: old }, { timeoutMs: Infinity })).toThrow(expect.objectContaining({ code: "ERR_OUT_OF_RANGE" }));
    expect(() => serveHandoff({ http: old }, { requireAdopted: "some" as never })).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARG_VALUE" }));
    const ho = track(serveHandoff({ http: old }));
    await expect(ho.drain({ graceMs: -5 })).rejects.toMatchObject({ code: "ERR_OUT_OF_RANGE" });
  });
});
