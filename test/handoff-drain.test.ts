/**
 * The drain loop (src/handoff/drain.ts), in one process:
 *   - bunServe(): during the window a request on an idle keep-alive connection is answered, with
 *     `Connection: close`; WebSockets are closed with 1001 at the end of the window; the drain ends
 *     once nothing is in flight, long before graceMs;
 *   - after the window an idle keep-alive connection is not closed by the drain (its next request may be
 *     on the way): a request that arrives later is answered with `Connection: close`, and one that
 *     never comes is closed by the server's own idleTimeout;
 *   - a long request runs to completion within graceMs, and is cut at graceMs (forced) otherwise;
 *   - raw TCP (net.Server): onConnection is called once per open connection, with hasUnreadInput()
 *     telling whether the peer sent bytes the server has not read yet.
 */
import { afterEach, describe, expect, test } from "bun:test";
import * as net from "node:net";
import { bunServe, drainSource } from "../src/handoff/index.ts";
import { trackNetServer, type DrainConnection } from "../src/handoff/drain.ts";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function keepAlive(port: number): { sock: net.Socket; text: () => string; closed: () => boolean; send: (s: string) => void } {
  const sock = net.connect(port, "127.0.0.1");
  let data = "";
  let closed = false;
  sock.on("data", (d) => (data += d));
  sock.on("close", () => (closed = true));
  sock.on("error", () => {});
  cleanups.push(() => sock.destroy());
  return { sock, text: () => data, closed: () => closed, send: (s) => sock.write(s) };
}
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond() && performance.now() < end) await Bun.sleep(5);
}

describe("drainListener: bunServe()", () => {
  test("window: a request on an idle keep-alive connection is answered with Connection: close; WebSocket closed with 1001; ends early", async () => {
    const server = bunServe({
      port: 0,
      hostname: "127.0.0.1",
      fetch(req: Request, srv: Bun.Server<undefined>) {
        if (srv.upgrade(req)) return undefined;
        return new Response("hi");
      },
      websocket: { message() {} },
    });
    cleanups.push(() => server.stop(true));
    const c = keepAlive(server.port!);
    c.send("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    await until(() => c.text().includes("hi"));
    expect(c.text().toLowerCase()).not.toContain("connection: close");
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`);
    let closeCode = 0;
    ws.onclose = (e) => (closeCode = e.code);
    await new Promise((r) => (ws.onopen = r));
    const t0 = performance.now();
    const drained = drainSource(server as never, { windowMs: 300, graceMs: 10_000 });
    await Bun.sleep(100); // inside the window: the idle connection is still open and answers
    expect(c.closed()).toBe(false);
    c.send("POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nab");
    await until(() => c.text().split("hi").length > 2);
    expect(c.text().split("\r\n\r\nhi")[1]!.toLowerCase()).toContain("connection: close");
    const report = await drained;
    expect(report.forced).toBe(false);
    expect(report.websocketsClosed).toBe(1);
    expect(performance.now() - t0).toBeLessThan(5000); // generous: it must not wait for graceMs
    await until(() => closeCode !== 0);
    expect(closeCode).toBe(1001);
  });

  test("after the window an idle keep-alive connection stays open: its next request is answered, never cut", async () => {
    const server = bunServe({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("hi") });
    cleanups.push(() => server.stop(true));
    const c = keepAlive(server.port!);
    c.send("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    await until(() => c.text().includes("hi"));
    const drained = drainSource(server as never, { windowMs: 50, graceMs: 20_000 });
    // Well past the window: a drain that closed idle connections here would race this request.
    await Bun.sleep(400);
    expect(c.closed()).toBe(false);
    c.send("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    await until(() => c.text().split("hi").length > 2);
    expect(c.text().split("\r\n\r\nhi")[1]!.toLowerCase()).toContain("connection: close");
    const report = await drained;
    expect(report.forced).toBe(false);
    await until(() => c.closed());
    expect(c.closed()).toBe(true);
  });

  test("an idle keep-alive connection that never sends again is closed by the server's idleTimeout, not cut", async () => {
    const server = bunServe({ port: 0, hostname: "127.0.0.1", idleTimeout: 1, fetch: () => new Response("hi") });
    cleanups.push(() => server.stop(true));
    const c = keepAlive(server.port!);
    c.send("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    await until(() => c.text().includes("hi"));
    const report = await drainSource(server as never, { windowMs: 50, graceMs: 30_000 });
    expect(report.forced).toBe(false);
    expect(c.closed()).toBe(true);
    expect(c.text().split("hi").length).toBe(2); // nothing more was sent or answered
  });

  test("a long request finishes within graceMs; one longer than graceMs is cut (forced)", async () => {
    let delay = 400;
    const server = bunServe({ port: 0, hostname: "127.0.0.1", fetch: async () => Bun.sleep(delay).then(() => new Response("slow")) });
    cleanups.push(() => server.stop(true));
    const a = keepAlive(server.port!);
    a.send("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    await Bun.sleep(50);
    const r1 = await drainSource(server as never, { windowMs: 100, graceMs: 5000 });
    expect(r1.forced).toBe(false);
    expect(a.text()).toContain("slow");

    delay = 60_000;
    const server2 = bunServe({ port: 0, hostname: "127.0.0.1", fetch: async () => Bun.sleep(delay).then(() => new Response("slow")) });
    cleanups.push(() => server2.stop(true));
    const b = keepAlive(server2.port!);
    b.send("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    await Bun.sleep(50);
    const r2 = await drainSource(server2 as never, { windowMs: 50, graceMs: 300 });
    expect(r2.forced).toBe(true);
    await until(() => b.closed());
    expect(b.closed()).toBe(true);
  });
});

describe("drainListener: raw TCP", () => {
  test("net.Server: onConnection per open connection; hasUnreadInput() sees bytes the server has not read", async () => {
    const server = net.createServer(() => {});
    trackNetServer(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanups.push(() => server.close());
    const port = (server.address() as net.AddressInfo).port;
    const quiet = keepAlive(port);
    const talker = keepAlive(port);
    await Bun.sleep(50);
    const seen: Array<{ port: number; unread: boolean; c: DrainConnection }> = [];
    const report = await drainSource(server, {
      windowMs: 100,
      graceMs: 1000,
      onConnection: (c) => {
        // Bun reads readable sockets eagerly: bytes are "unread" only until the next loop turn, so
        // the peer writes inside this synchronous callback and the check follows at once.
        if (c.remotePort === talker.sock.localPort) talker.send("unread bytes");
        seen.push({ port: c.remotePort, unread: c.hasUnreadInput(), c });
      },
    });
    expect(seen.length).toBe(2);
    const byPort = new Map(seen.map((s) => [s.port, s]));
    expect(byPort.get(quiet.sock.localPort!)!.unread).toBe(false);
    expect(byPort.get(talker.sock.localPort!)!.unread).toBe(true);
    expect(report.connectionsNotified).toBe(2);
  });
});
