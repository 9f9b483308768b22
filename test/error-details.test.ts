/**
 * Error details users act on: a closed number given to OwnedFd.from, the singular in the exact-count
 * message, a string `mode`, which fd a send's EBADF is about, server objects passed as fds (resolved
 * to their listening socket, or a clear error), and a handoff control path that is a directory.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as net from "node:net";
import { OwnedFd, SystemError, UnixListener, UnixStream } from "../src/index.ts";
import { describeSocket, serveHandoff } from "../src/handoff/index.ts";
import * as sys from "../src/sys.ts";

const dir = mkdtempSync(join(tmpdir(), "ua-errdetail-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An fd number that is certainly not open right now (opened, then closed by the test). */
function closedNumber(): number {
  const [r, w] = sys.pipe();
  sys.closeFd(w);
  sys.closeFd(r);
  return r;
}

describe("error details", () => {
  test("OwnedFd.from(n) of a number that is not open: SystemError EBADF naming it, nothing adopted", () => {
    const n = closedNumber();
    let e: unknown;
    try {
      OwnedFd.from(n);
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(SystemError);
    expect(e).toMatchObject({ code: "EBADF", syscall: "fcntl", message: `OwnedFd.from(${n}): fd ${n} is not open (fcntl F_GETFD: EBADF)` });
    // an open number is still taken as before
    const [r, w] = sys.pipe();
    OwnedFd.from(r).close();
    OwnedFd.from(w).close();
  });

  test("exact-count mismatch says '1 file descriptor' (singular) and '2 file descriptors'", () => {
    const [a, b] = UnixStream.pair();
    try {
      a.sendFdsSync("x");
      expect(() => b.recvFdsExactSync(1)).toThrow("expected exactly 1 file descriptor, received 0");
      a.sendFdsSync("x");
      expect(() => b.recvFdsExactSync(2)).toThrow("expected exactly 2 file descriptors, received 0");
    } finally {
      a.close();
      b.close();
    }
  });

  test('mode: "600" is a type error that shows the string (not "Received 600")', () => {
    let e: unknown;
    try {
      UnixListener.bindSync(join(dir, "m.sock"), { mode: "600" as never });
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(TypeError);
    expect(e).toMatchObject({ code: "ERR_INVALID_ARG_TYPE" });
    expect((e as Error).message).toBe('The "options.mode" argument must be an integer in 0..0o7777 (a number such as 0o600, not a string). Received "600"');
  });

  test("EBADF on a send names the fd: a closed fd among those sent, or the closed socket", () => {
    const [a, b] = UnixStream.pair();
    const [r, w] = sys.pipe();
    try {
      const n = closedNumber();
      expect(() => a.sendFdsSync("x", [r, n, w])).toThrow(`sendmsg failed: EBADF (bad file descriptor): fd ${n} (among the fds being sent) is not open`);
      // the socket itself: a number closed behind the UnixStream's back
      const dead = UnixStream.fromFd(OwnedFd.from(sys.dupCloexec(a.fd)));
      const num = dead.fd;
      sys.closeFd(num);
      let e: unknown;
      try {
        dead.sendFdsSync("x", [r]);
      } catch (x) {
        e = x;
      }
      expect(e).toMatchObject({ code: "EBADF", message: `sendmsg failed: EBADF (bad file descriptor): the socket (fd ${num}) is not open` });
      dead.intoFd().release();
    } finally {
      a.close();
      b.close();
      sys.closeFd(r);
      sys.closeFd(w);
    }
  });

  test("a Bun.serve server and a net.Server given as fds send their listening sockets", async () => {
    const [a, b] = UnixStream.pair();
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("x") });
    const ns = await new Promise<net.Server>((res) => {
      const s = net.createServer();
      s.listen(0, "127.0.0.1", () => res(s));
    });
    try {
      a.sendFdsSync("x", [server, ns]);
      using m = b.recvFdsSync(2);
      expect(m.fds.length).toBe(2);
      expect(describeSocket(m.fds[0]!.fd)).toMatchObject({ listening: true, port: server.port });
      expect(describeSocket(m.fds[1]!.fd)).toMatchObject({ listening: true, port: (ns.address() as net.AddressInfo).port });
    } finally {
      await server.stop(true);
      ns.close();
      a.close();
      b.close();
    }
  });

  test("an object that holds no fd: the error lists what is accepted", () => {
    const [a, b] = UnixStream.pair();
    try {
      expect(() => a.sendFdsSync("x", [{} as never])).toThrow(
        'The "fds[0]" argument must be an integer fd, an OwnedFd, an object with a numeric fd property (a Bun.listen listener, a socket, a FileHandle), a net.Server/net.Socket or a Bun.serve server. Received an instance of Object',
      );
    } finally {
      a.close();
      b.close();
    }
  });

  test('serveHandoff(..., { path: "/tmp" }) says the path is a directory, not that "/" is too open', () => {
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("x") });
    try {
      for (const path of [dir, `${dir}/`]) {
        let e: unknown;
        try {
          serveHandoff({ http: server }, { path }).close();
        } catch (x) {
          e = x;
        }
        expect(e).toMatchObject({ code: "ERR_INVALID_ARG_VALUE" });
        expect((e as Error).message).toContain(`is a directory (${JSON.stringify(path)}); it must be the control socket's file path`);
      }
    } finally {
      server.stop(true);
    }
  });
});

