/**
 * The other socket kinds and I/O shapes on the BSD layouts: datagram bind/connect by path, FreeBSD
 * seqpacket listeners, vectored sends and receives (several iovecs), receives into caller buffers.
 */
import { expect, test } from "bun:test";
import { UnixDatagram, UnixSeqpacket, UnixSeqpacketListener, UnixStream, platform } from "../../src/index.ts";
import { closeRaw, expectFds, files, k } from "./harness.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

test("datagram sockets bound to paths: connect by path, send fds, receive them", () => {
  const base = k.openFds();
  const path = `/fake/dgram-${process.pid}.sock`;
  const rx = UnixDatagram.bindSync(path);
  const tx = UnixDatagram.connectSync(path);
  const [f] = files(1);
  expect(tx.sendFdsSync("d", [f!])).toBe(1);
  using got = rx.recvFdsSync(2);
  expect(text(got.data)).toBe("d");
  expect(got.fds.map((o) => k.describeFd(o.fd)!.name)).toEqual(["f0"]);
  got[Symbol.dispose]();
  tx.close();
  rx.close();
  closeRaw(f!);
  expectFds(base);
});

test.skipIf(!platform.hasSeqpacket)("FreeBSD: seqpacket listener, connect, accept, message boundaries kept", () => {
  const base = k.openFds();
  const path = `/fake/seq-${process.pid}.sock`;
  const l = UnixSeqpacketListener.bindSync(path);
  const c = UnixSeqpacket.connectSync(path);
  const s = l.acceptSync();
  const [f] = files(1);
  c.sendFdsSync("one", [f!]);
  c.sendFdsSync("two");
  using m1 = s.recvFdsSync(1);
  using m2 = s.recvFdsSync(1);
  expect([text(m1.data), m1.fds.length, text(m2.data), m2.fds.length]).toEqual(["one", 1, "two", 0]);
  m1[Symbol.dispose]();
  c.close();
  s.close();
  l.close();
  closeRaw(f!);
  expectFds(base);
});

test("vectored send of three buffers and vectored receive into two: bytes in order, fds owned", () => {
  const base = k.openFds();
  const [a, b] = UnixStream.pair();
  const [f] = files(1);
  expect(a.sendFdsVectoredSync(["ab", "cd", "ef"], [f!, f!])).toBe(6);
  const x = new Uint8Array(4);
  const y = new Uint8Array(4);
  using got = b.recvFdsVectoredSync(4, [x, y]);
  expect(got.bytesRead).toBe(6);
  expect(text(x) + text(y.subarray(0, 2))).toBe("abcdef");
  expect(got.fds.length).toBe(2);
  got[Symbol.dispose]();
  a.close();
  b.close();
  closeRaw(f!);
  expectFds(base);
});

test("stream: fds arrive with the first byte of their send; a later plain send is read separately", () => {
  const [a, b] = UnixStream.pair();
  const [f] = files(1);
  a.sendFdsSync("xy", [f!]);
  a.sendFdsSync("z");
  const buf = new Uint8Array(16);
  using r1 = b.recvFdsIntoSync(2, buf);
  expect([r1.bytesRead, r1.fds.length, text(buf.subarray(0, 2))]).toEqual([2, 1, "xy"]);
  r1[Symbol.dispose]();
  using r2 = b.recvFdsIntoSync(2, buf);
  expect([r2.bytesRead, r2.fds.length, text(buf.subarray(0, 1))]).toEqual([1, 0, "z"]);
  a.close();
  b.close();
  closeRaw(f!);
});

test("async datagram ping-pong over the kqueue reactor", async () => {
  const [a, b] = UnixDatagram.pair();
  const [f] = files(1);
  for (let i = 0; i < 5; i++) {
    const p = b.recvFds(1);
    await a.sendFds(`p${i}`, [f!]);
    using got = await p;
    expect(text(got.data)).toBe(`p${i}`);
    got[Symbol.dispose]();
  }
  a.close();
  b.close();
  closeRaw(f!);
  const { shutdownReactor } = await import("../../src/async/reactor.ts");
  await shutdownReactor();
});
