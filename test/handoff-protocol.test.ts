/**
 * Handoff protocol and old-side guarantees, in one process (both ends are non-blocking, so they
 * share the event loop): framing limits, a full offer/ready/done round trip with metadata checks,
 * single flight, timeout, malformed/oversized frames, too many fds, peer policy (SO_PEERCRED with a
 * child of another uid when running as root), and fd hygiene around all of it.
 */
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import * as net from "node:net";
import * as http from "node:http";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OwnedFd, UnixSeqpacket, UnixSeqpacketListener } from "../src/index.ts";
import * as sys from "../src/sys.ts";
import {
  serveHandoff,
  requestHandoff,
  adoptBunServe,
  adoptBunListen,
  adoptNetServer,
  adoptNodeHttp,
  type HandoffServer,
} from "../src/handoff/index.ts";
import { encodeFrame, decodeFrame, FrameType, MAX_PAYLOAD, HEADER_SIZE } from "../src/handoff/protocol.ts";
import { Channel } from "../src/handoff/channel.ts";
import { fdSnapshot, expectNoNewFds, newFdsSince, expectNoFdLeak as expectNoFdLeakNow } from "./helpers/fds.ts";

/**
 * fd hygiene: after `body` and a short settle (servers of earlier steps close asynchronously), no fd
 * may exist that did not exist before; fds closed inside body (e.g. a stopped server) are fine.
 */
async function expectNoFdLeak<T>(body: () => T | Promise<T>): Promise<T> {
  await Bun.sleep(20);
  const before = fdSnapshot();
  const r = await body();
  await settled(before);
  return r;
}

/** Waits (up to 3 s) for servers stopped by the test to close their fds, then asserts none is left. */
async function settled(before: ReturnType<typeof fdSnapshot>): Promise<void> {
  for (let i = 0; i < 300 && newFdsSince(before).length > 0; i++) await Bun.sleep(10);
  expectNoNewFds(before);
}

let base = "";
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), "ua-ho-"));
  chmodSync(base, 0o700);
  cleanups.length = 0;
  return () => rmSync(base, { recursive: true, force: true });
});
let n = 0;
const ctlPath = () => join(base, `c${n++}`, "ctl.sock");

function bunServe(text = "old"): Bun.Server<unknown> {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response(text) });
  cleanups.push(() => s.stop(true));
  return s;
}

async function get(port: number): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: "close" } });
  return r.text();
}

function track(ho: HandoffServer): HandoffServer {
  cleanups.push(() => ho.close());
  return ho;
}

describe("framing", () => {
  test("round trip and strict rejection of malformed headers", () => {
    const f = encodeFrame(FrameType.Hello, { pid: 42 });
    expect(decodeFrame(f, 0)).toEqual({ type: FrameType.Hello, payload: { pid: 42 } });
    const bad = (mut: (v: DataView, b: Uint8Array) => Uint8Array | void, fds = 0) => {
      const b = encodeFrame(FrameType.Hello, { pid: 42 });
      const out = mut(new DataView(b.buffer), b) ?? b;
      return () => decodeFrame(out, fds);
    };
    expect(bad((v) => v.setUint32(0, 0xdeadbeef))).toThrow(/bad magic/);
    expect(bad((v) => v.setUint8(4, 1))).toThrow(/unsupported protocol version 1 \(this side speaks 2\)/);
    expect(bad((v) => v.setUint8(5, 9))).toThrow(/unknown frame type 9/);
    expect(bad((v) => v.setUint16(6, 1))).toThrow(/non-zero flags/);
    expect(bad((v) => v.setUint16(10, 1))).toThrow(/reserved/);
    expect(bad((v) => v.setUint32(12, MAX_PAYLOAD + 1))).toThrow(/exceeds/);
    expect(bad((v) => v.setUint32(12, 3))).toThrow(/header says/);
    expect(bad((_v, b) => b.subarray(0, 8))).toThrow(/shorter than/);
    expect(bad(() => {}, 1)).toThrow(/header announces 0 fds but 1 arrived/);
    expect(bad((v) => v.setUint16(8, 1), 1)).toThrow(/hello frames carry no fds/);
    expect(() => decodeFrame(encodeFrame(FrameType.Hello, {}), 0)).toThrow(/pid/);
    expect(() => decodeFrame(encodeFrame(FrameType.Offer, { pid: 1, listeners: [] }, 1), 1)).toThrow(/lists 0 listeners but carries 1/);
    const json = new TextEncoder().encode("{not json");
    const raw = new Uint8Array(HEADER_SIZE + json.length);
    raw.set(encodeFrame(FrameType.Hello, {}).subarray(0, HEADER_SIZE));
    new DataView(raw.buffer).setUint32(12, json.length);
    raw.set(json, HEADER_SIZE);
    expect(() => decodeFrame(raw, 0)).toThrow(/not valid UTF-8 JSON/);
    expect(() => encodeFrame(FrameType.Hello, { pid: 1, pad: "x".repeat(MAX_PAYLOAD) })).toThrow(/limit is 65536/);
  });
});

describe("closing the control channel", () => {
  // Closing a Unix socket with unread data makes the peer's next receive fail with ECONNRESET before
  // the frames already queued for it: a refused upgrader would see a reset instead of the abort.
  const readAll = (s: UnixSeqpacket): string[] => {
    const out: string[] = [];
    for (;;) {
      using r = s.recvFdsSync(4, { bufferSize: 70000 });
      if (r.data.byteLength === 0) return out;
      out.push(FrameType[decodeFrame(r.data, r.fds.length).type]!);
    }
  };

  /** The peer queues `unread` (with a pipe's read end) for the channel, which aborts and closes; what the peer reads then. */
  const abortWithUnread = (unread: (peer: UnixSeqpacket, pipeRead: number) => void): Promise<string[]> =>
    // checked at once, no settling: the leak net must get no chance to close what the drain should have
    expectNoFdLeakNow(() => {
      const [mine, peer] = UnixSeqpacket.pair();
      const chan = new Channel(mine);
      const [pr, pw] = sys.pipe();
      try {
        unread(peer, pr);
        chan.sendAbort("ERR_UA_PEER_REJECTED", "refused");
        chan.close();
        const seen = readAll(peer);
        peer.close();
        return seen;
      } finally {
        sys.closeFd(pr);
        sys.closeFd(pw);
      }
    });

  test("the peer reads our abort and EOF, also when its frame was never read (and its fds are closed)", async () => {
    const seen = await abortWithUnread((peer, pr) => peer.sendFdsSync(encodeFrame(FrameType.Ready, {}, 1), [pr]));
    expect(seen).toEqual(["Abort"]);
  });

  test("an unread message too big for a frame (with an fd) does not stop the drain: the one after it is read too", async () => {
    const seen = await abortWithUnread((peer, pr) => {
      peer.sendFdsSync(new Uint8Array(HEADER_SIZE + MAX_PAYLOAD + 100), [pr]); // truncated on read: an error
      peer.sendFdsSync(encodeFrame(FrameType.Hello, { pid: process.pid }));
    });
    expect(seen).toEqual(["Abort"]);
  });

  test("requestHandoff against an old side that refused and closed before reading the hello: the reason, not EPIPE", async () => {
    await expectNoFdLeak(async () => {
      const [old, upgrader] = UnixSeqpacket.pair();
      const oldChan = new Channel(old);
      oldChan.sendAbort("ERR_UA_PEER_REJECTED", "uid 65534 is not ours");
      oldChan.close(); // shutdown(SHUT_RD) first: the upgrader's hello fails with EPIPE
      const fd = upgrader.intoFd().release();
      await expect(requestHandoff({ fd, timeoutMs: 5000 })).rejects.toMatchObject({
        code: "ERR_UA_PEER_REJECTED",
        message: expect.stringContaining("handoff refused by the old side: uid 65534 is not ours"),
      });
    });
  });

  test("a frame the peer sends while the channel is closing cannot reset it: the send fails with EPIPE", async () => {
    await expectNoFdLeak(() => {
      const [mine, peer] = UnixSeqpacket.pair();
      const chan = new Channel(mine);
      chan.sendAbort("ERR_UA_PEER_REJECTED", "refused");
      // The peer's hello lands after the channel's drain, right before the close (the race CI hit).
      const realClose = mine.close.bind(mine);
      let lateSend = "";
      mine.close = () => {
        try {
          peer.sendFdsSync(encodeFrame(FrameType.Hello, { pid: process.pid }));
          lateSend = "sent";
        } catch (e) {
          lateSend = (e as { code?: string }).code ?? String(e);
        }
        realClose();
      };
      chan.close();
      expect(lateSend).toBe("EPIPE");
      expect(readAll(peer)).toEqual(["Abort"]);
      peer.close();
    });
  });
});

describe("serveHandoff / requestHandoff in one process", () => {
  test("offer -> adopt (Bun.serve) -> ready -> done; control dir 0700, socket 0600; no fd leaked", async () => {
    const old = bunServe("old");
    const path = ctlPath();
    let adoptedPort = 0;
    await expectNoFdLeak(async () => {
      const ho = track(serveHandoff({ http: old }, { path, timeoutMs: 5000 }));
      expect(statSync(join(path, "..")).mode & 0o777).toBe(0o700);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      const h = await requestHandoff({ path, timeoutMs: 5000 });
      const l = h.take("http");
      expect(l).toMatchObject({ name: "http", family: "ipv4", address: "127.0.0.1", port: old.port, type: "stream" });
      const a = await adoptBunServe(l, { fetch: () => new Response("new") });
      expect(a.kind).toBe("bun-serve");
      expect(a.fallback).toBe(false);
      expect(a.address.port).toBe(old.port!);
      expect(l.fd.closed).toBe(true); // the adopter took it
      const r = await h.ready();
      expect(r).toEqual({ confirmed: true, oldPid: process.pid });
      const up = await ho.upgraded;
      expect(up.adopted).toEqual(["http"]);
      expect(up.pid).toBe(process.pid);
      expect(ho.state).toBe("upgraded");
      await old.stop(true);
      // Now only the adopted Bun.serve holds the port.
      for (let i = 0; i < 5; i++) expect(await get(a.address.port)).toBe("new");
      adoptedPort = a.address.port;
      await a.stop(true);
      ho.close();
    });
    expect(adoptedPort).toBeGreaterThan(0);
  });

  test("adopters: Bun.listen, net.Server, node:http; unclaimed fds closed by ready(); wrong options refused", async () => {
    const s1 = await new Promise<net.Server>((r) => { const s = net.createServer(); s.listen(0, "127.0.0.1", () => r(s)); });
    const s2 = await new Promise<net.Server>((r) => { const s = net.createServer(); s.listen(0, "127.0.0.1", () => r(s)); });
    const s3 = await new Promise<http.Server>((r) => { const s = http.createServer((_, res) => res.end("old")); s.listen(0, "127.0.0.1", () => r(s)); });
    const s4 = bunServe();
    cleanups.push(() => { s1.close(); s2.close(); s3.close(); });
    const path = ctlPath();
    const before = fdSnapshot();
    const ho = track(serveHandoff({ a: s1, b: s2, c: s3, unused: s4 }, { path, requireAdopted: "any" }));
    const h = await requestHandoff({ path });
    expect([...h.listeners.keys()]).toEqual(["a", "b", "c", "unused"]);
    // refused at compile time too; a JavaScript caller gets the run-time error
    // @ts-expect-error port is not an option of an adopted socket
    expect(() => adoptBunServe(h.listeners.get("a")!, { port: 8080, fetch: () => new Response() })).toThrow(/option "port" is not allowed/);
    // @ts-expect-error fd is not an option of an adopted socket
    expect(() => adoptBunServe(h.listeners.get("a")!, { fd: 3, fetch: () => new Response() })).toThrow(/option "fd" is not allowed/);
    expect(() => adoptBunListen(h.listeners.get("a")!, { hostname: "0.0.0.0", socket: {} })).toThrow(/hostname/);
    const bl = adoptBunListen(h.take("a"), { socket: { open(s: any) { s.end("bun-listen\n"); }, data() {} } });
    const ns = await adoptNetServer(h.take("b"), net.createServer((c) => c.end("net\n")));
    await expect(adoptNetServer(h.listeners.get("c")!, http.createServer())).rejects.toThrow(/adoptNodeHttp/);
    const nh = await adoptNodeHttp(h.take("c"), (_, res) => res.end("node-http"));
    expect((await h.ready()).confirmed).toBe(true);
    await ho.upgraded;
    expect(h.listeners.get("unused")!.fd.closed).toBe(true); // not taken -> closed by ready()
    s1.close(); s2.close(); s3.close();
    const read = (port: number) => new Promise<string>((res) => { const c = net.connect(port, "127.0.0.1"); let d = ""; c.on("data", (x) => (d += x)); c.on("close", () => res(d)); });
    expect(await read((s1.address() as net.AddressInfo)?.port ?? h.listeners.get("a")!.port)).toBe("bun-listen\n");
    expect(await read(h.listeners.get("b")!.port)).toBe("net\n");
    expect(await get(h.listeners.get("c")!.port)).toBe("node-http");
    bl.stop(true);
    await new Promise((r) => ns.close(r));
    await nh.close();
    ho.close();
    await settled(before); // everything received is closed too
  });

  test("Bun.serve self-check failure: loud fallback to node:http on the received address, never a wrong port", async () => {
    const old = bunServe("old");
    const path = ctlPath();
    await expectNoFdLeak(async () => {
      const ho = track(serveHandoff({ http: old }, { path, timeoutMs: 5000 }));
      const h = await requestHandoff({ path, timeoutMs: 5000 });
      const l = h.take("http");
      const warnings: string[] = [];
      // attempts: 0 makes the self-check fail without a single probe: the path a failed adoption takes.
      const a = await adoptBunServe(l, { fetch: () => new Response("fallback") }, { selfCheck: { attempts: 0 }, warn: (m) => warnings.push(m) });
      expect(a.kind).toBe("node-http");
      expect(a.fallback).toBe(true);
      expect(a.fallbackReason).toMatch(/self-check failed/);
      expect(warnings.length).toBe(1);
      expect(warnings[0]).toMatch(/node:http/);
      expect(a.address.port).toBe(old.port!);
      expect(await h.ready()).toMatchObject({ confirmed: true });
      await ho.upgraded;
      await old.stop(true);
      // The received address itself answers, from the fallback server: not port 3000, not a random port.
      for (let i = 0; i < 3; i++) expect(await get(a.address.port)).toBe("fallback");
      await a.stop(true);
      ho.close();
    });
  });

  test("fallback: 'throw' refuses instead of serving through node:http", async () => {
    const old = bunServe("old");
    const path = ctlPath();
    await expectNoFdLeak(async () => {
      const ho = track(serveHandoff({ http: old }, { path, timeoutMs: 5000 }));
      const h = await requestHandoff({ path, timeoutMs: 5000 });
      const l = h.take("http");
      await expect(adoptBunServe(l, { fetch: () => new Response("x") }, { selfCheck: { attempts: 0 }, fallback: "throw" })).rejects.toThrow(/could not adopt/);
      l.fd.close();
      h.abort("adoption failed");
      ho.close();
      expect(await get(old.port!)).toBe("old"); // the old server never stopped serving
    });
  });

  test("a second concurrent upgrader is refused with ERR_UA_BUSY; the first one still succeeds", async () => {
    const old = bunServe();
    const path = ctlPath();
    await expectNoFdLeak(async () => {
      const ho = track(serveHandoff({ http: old }, { path }));
      const first = await requestHandoff({ path });
      const second = requestHandoff({ path });
      await expect(second).rejects.toMatchObject({ code: "ERR_UA_BUSY" });
      expect(ho.stats.failures).toBe(1);
      expect(ho.state).toBe("upgrading");
      first.take("http").fd.close();
      expect((await first.ready()).confirmed).toBe(true);
      ho.close();
    });
  });

  test("timeout: the old side aborts, carries on, and a later upgrade succeeds; the late ready() rejects", async () => {
    const old = bunServe("old");
    const path = ctlPath();
    await expectNoFdLeak(async () => {
      const failures: string[] = [];
      const ho = track(serveHandoff({ http: old }, { path, timeoutMs: 150, onFailure: (e) => failures.push((e as any).code) }));
      const slow = await requestHandoff({ path });
      // the old side's deadline passes while the upgrader sits still (polled, not a fixed sleep: a
      // loaded or emulated machine may take longer than any margin)
      for (let i = 0; i < 500 && ho.state !== "idle"; i++) await Bun.sleep(10);
      expect(ho.state).toBe("idle");
      expect(failures).toEqual(["ERR_UA_TIMEOUT"]);
      await expect(slow.ready()).rejects.toMatchObject({ code: "ERR_UA_TIMEOUT" });
      expect(await get(old.port!)).toBe("old");
      const ok = await requestHandoff({ path });
      ok.take("http").fd.close();
      expect((await ok.ready()).confirmed).toBe(true);
      ho.close();
    });
  });

  test("abort from the upgrader and a dropped connection at each step leave the old side idle", async () => {
    const old = bunServe();
    const path = ctlPath();
    await expectNoFdLeak(async () => {
      const ho = track(serveHandoff({ http: old }, { path }));
      // 1: connect and hang up before hello
      UnixSeqpacket.connectSync(path).close();
      let r = await ho.nextAttempt();
      expect(r.ok).toBe(false);
      // 2: hello, then hang up before reading the offer (the offered fds must not leak on our side)
      const h = await requestHandoff({ path });
      h.abort("changed my mind");
      r = await ho.nextAttempt();
      expect(r.ok).toBe(false);
      expect(String((r as any).error.message)).toContain("changed my mind");
      expect(ho.state).toBe("idle");
      ho.close();
    });
  });

  test("malformed, oversized and fd-flooding frames: clear abort frame, every fd closed, old side unaffected", async () => {
    const old = bunServe("old");
    const path = ctlPath();
    const errs: string[] = [];
    const ho = track(serveHandoff({ http: old }, { path, onFailure: (e) => errs.push(e.message) }));
    const reply = async (s: UnixSeqpacket) => {
      // Both ends live in this process: wait without blocking the event loop.
      const end = performance.now() + 3000;
      while (sys.pollOne(s.fd, 1, 0) === 0 && performance.now() < end) await Bun.sleep(1);
      using got = s.recvFdsSync(64, { bufferSize: 70000 });
      return decodeFrame(got.data, got.fds.length);
    };
    await expectNoFdLeak(async () => {
      {
        using s = UnixSeqpacket.connectSync(path);
        s.sendFdsSync("GET / HTTP/1.1\r\n\r\n");
        const f = await reply(s);
        expect(f.type).toBe(FrameType.Abort);
        expect(f.payload).toMatchObject({ code: "ERR_UA_PROTOCOL" });
        expect(String(f.payload.message)).toMatch(/bad magic/);
      }
      await Bun.sleep(10);
      {
        using s = UnixSeqpacket.connectSync(path);
        const big = new Uint8Array(HEADER_SIZE + MAX_PAYLOAD + 100);
        big.set(encodeFrame(FrameType.Hello, { pid: 1 }).subarray(0, HEADER_SIZE));
        s.sendFdsSync(big);
        const f = await reply(s);
        expect(f.type).toBe(FrameType.Abort);
        expect(String(f.payload.message)).toMatch(/exceeds the limits/);
      }
      await Bun.sleep(10);
      {
        // 100 fds with a hello that announces none: MSG_CTRUNC / count mismatch -> all closed.
        const pipes: OwnedFd[] = [];
        for (let i = 0; i < 50; i++) for (const p of sys.pipe()) pipes.push(OwnedFd.from(p));
        using s = UnixSeqpacket.connectSync(path);
        s.sendFdsSync(encodeFrame(FrameType.Hello, { pid: 1 }), pipes);
        for (const p of pipes) p.close();
        const f = await reply(s);
        expect(f.type).toBe(FrameType.Abort);
        expect(String(f.payload.message)).toMatch(/limits|carry no fds|fds/);
      }
      await Bun.sleep(10);
      {
        // Valid header, wrong fd count (hello with 2 fds announced and attached).
        const fds = sys.pipe().map((x) => OwnedFd.from(x));
        using s = UnixSeqpacket.connectSync(path);
        const b = encodeFrame(FrameType.Hello, { pid: 1 });
        new DataView(b.buffer).setUint16(8, 2);
        s.sendFdsSync(b, fds);
        for (const p of fds) p.close();
        const f = await reply(s);
        expect(String(f.payload.message)).toMatch(/hello frames carry no fds/);
      }
      await Bun.sleep(10);
    });
    expect(errs.length).toBe(4);
    expect(ho.state).toBe("idle");
    expect(await get(old.port!)).toBe("old");
    const h = await requestHandoff({ path });
    h.take("http").fd.close();
    expect((await h.ready()).confirmed).toBe(true);
  });

  test("peer policy: a function can refuse; the refusal reaches the upgrader as ERR_UA_PEER_REJECTED", async () => {
    const old = bunServe();
    const path = ctlPath();
    await expectNoFdLeak(async () => {
      const ho = track(serveHandoff({ http: old }, { path, peerPolicy: (p) => (p.pid === 1 ? true : "only pid 1 may upgrade") }));
      await expect(requestHandoff({ path })).rejects.toMatchObject({ code: "ERR_UA_PEER_REJECTED" });
      expect(ho.state).toBe("idle");
      ho.close();
    });
  });

  test.skipIf(process.getuid?.() !== 0)("SO_PEERCRED: a peer running as another uid (nobody: the child drops to it) is refused by default", async () => {
    const old = bunServe();
    // The 0700 control directory alone keeps other uids out; to exercise the SO_PEERCRED check we
    // accept the connection on a world-reachable socket ourselves and hand it to serveHandoff.
    const dir = mkdtempSync(join(tmpdir(), "ua-ho-peer-"));
    chmodSync(dir, 0o755);
    const path = join(dir, "open.sock");
    using l = UnixSeqpacketListener.bindSync(path, { mode: 0o666 });
    try {
      const child = Bun.spawn([process.execPath, join(import.meta.dir, "fixtures", "handoff-peer.ts"), path, "65534"], { stdout: "pipe", stderr: "inherit" });
      sys.pollOne(l.fd, 1, 15000);
      const conn = l.acceptSync();
      const failures: Error[] = [];
      const ho = serveHandoff({ http: old }, { socket: conn, onFailure: (e) => failures.push(e) });
      const out = JSON.parse((await new Response(child.stdout).text()).trim());
      await child.exited;
      // one assertion on the whole reply, so a failure shows the child's error/code if it had one
      expect(out).toMatchObject({ uid: 65534, type: FrameType.Abort, payload: { code: "ERR_UA_PEER_REJECTED" } });
      expect(out.fds).toBe(0);
      expect(failures[0]!.message).toMatch(/uid 65534 is not ours/);
      await expect(ho.upgraded).rejects.toThrow();
      // ...and with a policy allowing that uid, the same kind of peer gets the offer.
      const child2 = Bun.spawn([process.execPath, join(import.meta.dir, "fixtures", "handoff-peer.ts"), path, "65534"], { stdout: "pipe", stderr: "inherit" });
      sys.pollOne(l.fd, 1, 15000);
      const ho2 = serveHandoff({ http: old }, { socket: l.acceptSync(), peerPolicy: { uids: [65534] }, timeoutMs: 500 });
      const out2 = JSON.parse((await new Response(child2.stdout).text()).trim());
      expect(out2.type).toBe(FrameType.Offer);
      expect(out2.fds).toBe(1);
      ho2.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("refuses an insecure control directory and unknown sources", () => {
    const old = bunServe();
    const dir = join(base, "open");
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    expect(() => serveHandoff({ http: old }, { path: join(dir, "c.sock") })).toThrow(/chmod 700/);
    expect(() => serveHandoff({ "bad name": old })).toThrow(/invalid listener name/);
    expect(() => serveHandoff({ x: {} as any })).toThrow(/expected a Bun.serve server/);
    expect(() => serveHandoff({ x: 987654 })).toThrow(/not an open/);
  });
});
