/**
 * sockaddr_un on the BSD layout: a sun_len byte before a one-byte family, 104 bytes of path. The fake
 * checks that sun_len equals the address length the library passes and that the path is
 * NUL-terminated exactly there; addresses the kernel writes back are decoded with the same layout.
 */
import { expect, test } from "bun:test";
import { UnixListener, UnixStream, platform } from "../../src/index.ts";
import { k } from "./harness.ts";

test("bind/connect hand over a sockaddr_un with sun_len = addrlen; both ends decode each other's address", () => {
  const path = `/fake/addr-${process.pid}.sock`;
  using l = UnixListener.bindSync(path);
  using c = UnixStream.connectSync(path);
  using s = l.acceptSync();
  expect(c.peerAddress()).toEqual({ family: "unix", path, abstract: false });
  expect(s.localAddress()).toEqual({ family: "unix", path, abstract: false });
  // an unbound end: the BSD "no name" address (16 bytes, family AF_UNIX, empty path)
  expect(c.localAddress()).toEqual({ family: "unix", path: "", abstract: false });
});

test("the longest path the table allows (103 bytes + NUL) binds; one more byte is refused before the syscall", () => {
  expect(platform.sockaddrUn.pathSize).toBe(104);
  const dir = "/fake/";
  const longest = dir + "x".repeat(103 - dir.length);
  using l = UnixListener.bindSync(longest);
  expect(l).toBeDefined();
  const binds = k.calls.get("bind") ?? 0;
  expect(() => UnixListener.bindSync(longest + "y")).toThrow(expect.objectContaining({ code: "ENAMETOOLONG" }));
  expect(k.calls.get("bind") ?? 0).toBe(binds);
});

test("abstract-namespace addresses (leading NUL) are Linux-only: refused up front", () => {
  const binds = k.calls.get("bind") ?? 0;
  expect(() => UnixListener.bindSync("\0abstract")).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARG_VALUE" }));
  expect(k.calls.get("bind") ?? 0).toBe(binds);
});

test("connecting to a path nobody listens on: ECONNREFUSED from the kernel, no fd left behind", () => {
  const base = k.openFds();
  expect(() => UnixStream.connectSync(`/fake/nobody-${process.pid}.sock`)).toThrow(expect.objectContaining({ code: "ECONNREFUSED" }));
  expect(k.openFds()).toEqual(base);
});
