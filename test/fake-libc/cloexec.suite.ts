/**
 * CLOEXEC on received and created fds: darwin has no MSG_CMSG_CLOEXEC and no SOCK_CLOEXEC, so the
 * library sets FD_CLOEXEC with ioctl(FIOCLEX) right after recvmsg/socket/accept; FreeBSD gets it from
 * the kernel atomically. A failing FIOCLEX must close the whole received batch.
 */
import { expect, test } from "bun:test";
import { UnixListener, UnixStream, SystemError, platform } from "../../src/index.ts";
import { closeRaw, expectFds, files, isDarwin, k } from "./harness.ts";

const ioctls = () => k.calls.get("ioctl") ?? 0;

test("received fds are CLOEXEC: one FIOCLEX each on darwin, none on FreeBSD (MSG_CMSG_CLOEXEC)", () => {
  const [a, b] = UnixStream.pair();
  const [f] = files(1);
  a.sendFdsSync("x", [f!, f!, f!]);
  const before = ioctls();
  using got = b.recvFdsSync(4);
  expect(ioctls() - before).toBe(isDarwin ? 3 : 0);
  for (const o of got.fds) expect(k.describeFd(o.fd)!.cloexec).toBe(true);
  got[Symbol.dispose]();
  a.close();
  b.close();
  closeRaw(f!);
});

test("sockets the library creates are CLOEXEC (type flag on FreeBSD, FIOCLEX on darwin)", () => {
  const [a, b] = UnixStream.pair();
  expect(k.describeFd(a.fd)!.cloexec).toBe(true);
  expect(k.describeFd(b.fd)!.cloexec).toBe(true);
  const path = `/fake/cloexec-${process.pid}.sock`;
  using l = UnixListener.bindSync(path);
  expect(k.describeFd(l.fd)!.cloexec).toBe(true);
  using c = UnixStream.connectSync(path);
  using s = l.acceptSync();
  expect(k.describeFd(c.fd)!.cloexec).toBe(true);
  expect(k.describeFd(s.fd)!.cloexec).toBe(true);
  a.close();
  b.close();
});

test.skipIf(!isDarwin)("darwin: a failing FIOCLEX after recvmsg throws and closes the whole batch", () => {
  const base = k.openFds();
  const [a, b] = UnixStream.pair();
  const [f] = files(1);
  a.sendFdsSync("x", [f!, f!, f!]);
  const withSockets = k.openFds();
  k.failFioclex(1, "EBADF");
  let err: unknown;
  try {
    b.recvFdsSync(4);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(SystemError);
  expect((err as SystemError).syscall).toBe("ioctl");
  expect(k.openFds()).toEqual(withSockets); // all three received fds closed
  // the socket is still usable
  a.sendFdsSync("y", [f!]);
  using again = b.recvFdsSync(1);
  expect(again.fds.length).toBe(1);
  again[Symbol.dispose]();
  a.close();
  b.close();
  closeRaw(f!);
  expectFds(base);
});

test.skipIf(!isDarwin)("darwin: a failing FIOCLEX in the middle of a batch still closes every fd of it", () => {
  const [a, b] = UnixStream.pair();
  const [f] = files(1);
  a.sendFdsSync("x", new Array(10).fill(f));
  const withSockets = k.openFds();
  k.failFioclex(1, "EIO", 4); // four succeed, the fifth fails
  expect(() => b.recvFdsSync(16)).toThrow(expect.objectContaining({ code: "EIO", syscall: "ioctl" }));
  expect(k.openFds()).toEqual(withSockets);
  a.close();
  b.close();
  closeRaw(f!);
});

test.skipIf(!isDarwin)("darwin: socketpair whose FIOCLEX fails closes both ends and throws", () => {
  const base = k.openFds();
  k.failFioclex(1, "EIO");
  expect(() => UnixStream.pair()).toThrow(expect.objectContaining({ code: "EIO" }));
  expectFds(base);
});

test("the ABI's strategy is the one the table names", () => {
  expect(platform.cloexec).toBe(isDarwin ? "ioctl_fioclex" : "msg_cmsg_cloexec");
});
