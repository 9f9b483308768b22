/**
 * The async API over the kqueue backend: kevent changes from the main thread (32-byte darwin / 64-byte
 * FreeBSD structs, checked by the fake), the reactor Worker blocked in kevent() (the fake answers it
 * from a real pipe), one-shot re-arming, wake-up through EVFILT_USER, aborts and closes mid-wait.
 */
import { afterAll, expect, test } from "bun:test";
import { UnixDatagram, UnixListener, UnixStream } from "../../src/index.ts";
import { reactorStats, shutdownReactor } from "../../src/async/reactor.ts";
import { closeRaw, expectFds, files, k } from "./harness.ts";

afterAll(async () => {
  await shutdownReactor();
});

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

test("recvFds waits on the kqueue and resolves when the peer sends", async () => {
  const base = k.openFds();
  const [a, b] = UnixStream.pair();
  const [f] = files(1);
  const p = b.recvFds(4);
  await tick();
  expect(reactorStats()).toMatchObject({ started: true, backend: "kqueue", pending: 1 });
  a.sendFdsSync("x", [f!, f!]);
  const got = await p;
  expect(got.fds.length).toBe(2);
  expect(got.fds.every((o) => k.describeFd(o.fd)!.cloexec)).toBe(true);
  got[Symbol.dispose]();
  a.close();
  b.close();
  closeRaw(f!);
  expectFds(base);
  expect(reactorStats().pending).toBe(0);
});

test("many receives in a row: each one-shot knote is re-armed", async () => {
  const [a, b] = UnixDatagram.pair();
  const [f] = files(1);
  for (let i = 0; i < 20; i++) {
    const p = b.recvFds(1);
    await tick(1);
    a.sendFdsSync(`m${i}`, [f!]);
    using got = await p;
    expect(new TextDecoder().decode(got.data)).toBe(`m${i}`);
    got[Symbol.dispose]();
  }
  a.close();
  b.close();
  closeRaw(f!);
});

test("accept waits for a connection", async () => {
  const path = `/fake/reactor-${process.pid}.sock`;
  using l = UnixListener.bindSync(path);
  const p = l.accept();
  await tick();
  using c = UnixStream.connectSync(path);
  using s = await p;
  expect(k.describeFd(s.fd)!.kind).toBe("socket");
  s.sendFdsSync("y");
  using got = c.recvFdsSync(0);
  expect(new TextDecoder().decode(got.data)).toBe("y");
});

test("an aborted wait rejects with ERR_UA_ABORTED, leaves nothing pending, and the socket still works", async () => {
  const [a, b] = UnixStream.pair();
  const ac = new AbortController();
  const p = b.recvFds(1, { signal: ac.signal });
  await tick();
  ac.abort();
  await expect(p).rejects.toMatchObject({ code: "ERR_UA_ABORTED" });
  expect(reactorStats().pending).toBe(0);
  const q = b.recvFds(1);
  a.sendFdsSync("z");
  using got = await q;
  expect(new TextDecoder().decode(got.data)).toBe("z");
  a.close();
  b.close();
});

test("closing the socket during a wait rejects it; its knotes go with the fd", async () => {
  const [a, b] = UnixStream.pair();
  const p = b.recvFds(1);
  await tick();
  b.close();
  await expect(p).rejects.toMatchObject({ code: "ERR_UA_CLOSED" });
  a.close();
  expect(reactorStats().pending).toBe(0);
});

test("the peer closing wakes a pending receive with end of stream", async () => {
  const [a, b] = UnixStream.pair();
  const p = b.recvFds(1);
  await tick();
  a.close();
  using got = await p;
  expect(got.data.length).toBe(0);
  expect(got.fds.length).toBe(0);
  b.close();
});

test("a send that hits a full buffer (EAGAIN) waits for writable and completes once the peer drains", async () => {
  const [a, b] = UnixStream.pair();
  const big = new Uint8Array(48 * 1024);
  a.sendFdsSync(big); // most of the fake's 64 KiB socket buffer
  const p = a.sendFdsAll(new Uint8Array(40 * 1024));
  await tick();
  expect(reactorStats().pending).toBeGreaterThan(0);
  let read = 0;
  while (read < 88 * 1024) {
    using r = await b.recvFds(0);
    read += r.data.length;
  }
  await p;
  expect(read).toBe(88 * 1024);
  a.close();
  b.close();
});

test("shutting the reactor down wakes the Worker through EVFILT_USER; the kqueue stays with the thread and serves a new Worker", async () => {
  const [a, b] = UnixStream.pair();
  const p = b.recvFds(1);
  await tick();
  expect(k.kqueues.size).toBe(1);
  const kq = [...k.kqueues][0];
  const outcome = p.then(() => "resolved", (e: { code?: string }) => e.code); // (expect().rejects would wait for p right here)
  await shutdownReactor();
  expect(await outcome).toBe("ERR_UA_CLOSED");
  expect(reactorStats().started).toBe(false);
  // the poll fd lives as long as the JS thread (src/async/thread-lifetime.ts): same kqueue, new Worker
  expect([...k.kqueues]).toEqual([kq]);
  const q = b.recvFds(1);
  await tick();
  a.sendFdsSync("again");
  using got = await q;
  expect(new TextDecoder().decode(got.data)).toBe("again");
  expect([...k.kqueues]).toEqual([kq]);
  a.close();
  b.close();
});
