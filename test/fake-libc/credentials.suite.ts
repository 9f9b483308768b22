/**
 * peerCredentials() through LOCAL_PEERCRED (struct xucred) on darwin and FreeBSD: the pid comes from
 * FreeBSD's cr_pid (offset 80) or darwin's LOCAL_PEERPID; a connecting client sees the listener's
 * credentials as of listen(), the accepted socket sees the client's as of connect().
 */
import { expect, test } from "bun:test";
import { peerCredentials, setPassCred, UnixListener, UnixStream } from "../../src/index.ts";
import { isDarwin, k } from "./harness.ts";

const saved = { ...k.identity };
function as(pid: number, uid: number, gids: number[]): void {
  k.identity = { pid, uid, gids };
}

test("a socketpair's peer is this process", () => {
  as(4242, 1001, [20, 12]);
  const [a, b] = UnixStream.pair();
  expect(peerCredentials(a)).toEqual({ pid: 4242, uid: 1001, gid: 20 });
  expect(peerCredentials(b)).toEqual({ pid: 4242, uid: 1001, gid: 20 });
  a.close();
  b.close();
  k.identity = saved;
});

test("listener and client see each other's credentials (the listener's as of listen())", () => {
  const path = `/fake/creds-${process.pid}.sock`;
  as(100, 0, [0]);
  using l = UnixListener.bindSync(path);
  as(200, 501, [20]);
  using c = UnixStream.connectSync(path);
  as(300, 7, [7]);
  using s = l.acceptSync();
  expect(peerCredentials(s)).toEqual({ pid: 200, uid: 501, gid: 20 });
  expect(peerCredentials(c)).toEqual({ pid: 100, uid: 0, gid: 0 });
  k.identity = saved;
});

test("the pid's source is the ABI's: LOCAL_PEERPID on darwin, cr_pid (no extra call) on FreeBSD", () => {
  const [a, b] = UnixStream.pair();
  const before = k.calls.get("getsockopt") ?? 0;
  peerCredentials(a);
  expect((k.calls.get("getsockopt") ?? 0) - before).toBe(isDarwin ? 2 : 1);
  a.close();
  b.close();
});

test("a peer with no groups reports gid 0xffffffff", () => {
  as(55, 9, []);
  const [a, b] = UnixStream.pair();
  expect(peerCredentials(a).gid).toBe(0xffff_ffff);
  a.close();
  b.close();
  k.identity = saved;
});

test("an unconnected socket: ENOTCONN from the kernel", () => {
  const path = `/fake/creds-unconnected-${process.pid}.sock`;
  using l = UnixListener.bindSync(path);
  expect(() => peerCredentials(l.fd)).toThrow(expect.objectContaining({ code: "ENOTCONN" }));
});

test("SO_PASSCRED does not exist here: ERR_UA_UNSUPPORTED before any syscall", () => {
  const [a, b] = UnixStream.pair();
  const before = k.calls.get("setsockopt") ?? 0;
  expect(() => setPassCred(a, true)).toThrow(expect.objectContaining({ code: "ERR_UA_UNSUPPORTED" }));
  expect(k.calls.get("setsockopt") ?? 0).toBe(before);
  a.close();
  b.close();
});
