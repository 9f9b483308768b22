/**
 * Control-data truncation (MSG_CTRUNC) and the per-receive fd budget. The fake kernel installs the fds
 * whose 4-byte slots fit the caller's control buffer and closes the rest, as FreeBSD does; the library
 * must own or close the ones that were installed.
 */
import { expect, test } from "bun:test";
import { cmsgRecvmsg, cmsgSendmsg, SocketAncillary, UnixDatagram, UnixStream, platform } from "../../src/index.ts";
import { attachedControlSize } from "../../src/cmsg/sizes.ts";
import { closeRaw, expectFds, files, isDarwin, k } from "./harness.ts";

test("low-level receive into a buffer for 1 fd of a 3-fd message: truncated, nothing leaks", () => {
  const base = k.openFds();
  const [a, b] = UnixStream.pair();
  const [f] = files(1);
  a.sendFdsSync("x", [f!, f!, f!]);
  const withSockets = k.openFds();
  const anc = new SocketAncillary(new Uint8Array(SocketAncillary.bufferSizeForRights(1)));
  const r = cmsgRecvmsg(b, [new Uint8Array(8)], anc);
  expect(r.truncated).toBe(true);
  expect(r.bytesRead).toBe(1);
  // whatever the kernel installed is the buffer's until clear(); after clear() nothing is left
  anc.clear();
  expect(k.openFds()).toEqual(withSockets);
  a.close();
  b.close();
  closeRaw(f!);
  expectFds(base);
  expect(k.liveDescriptions()).toBe(0);
});

test("a control buffer smaller than one header: truncated, every fd disposed of by the kernel", () => {
  const base = k.openFds();
  const [a, b] = UnixDatagram.pair();
  const [f] = files(1);
  a.sendFdsSync("x", [f!, f!]);
  const anc = new SocketAncillary(new Uint8Array(4));
  const r = cmsgRecvmsg(b, [new Uint8Array(8)], anc);
  expect(r.truncated).toBe(true);
  anc.clear();
  a.close();
  b.close();
  closeRaw(f!);
  expectFds(base);
});

test("a low-level send of the table's maximum goes through; the buffer size is the table's CMSG_SPACE", () => {
  const base = k.openFds();
  const [a, b] = UnixDatagram.pair();
  const [f] = files(1);
  const anc = new SocketAncillary(new Uint8Array(SocketAncillary.bufferSizeForRights(platform.maxFdsPerSend)));
  anc.addFds(new Array(platform.maxFdsPerSend).fill(f));
  expect(anc.length).toBe(isDarwin ? 1024 : 1032);
  expect(cmsgSendmsg(a, ["x"], anc)).toBe(1);
  using got = b.recvFdsSync(platform.maxFdsPerSend);
  expect(got.fds.length).toBe(platform.maxFdsPerSend);
  got[Symbol.dispose]();
  a.close();
  b.close();
  closeRaw(f!);
  expectFds(base);
});

const space = (n: number) => SocketAncillary.bufferSizeForRights(n);
/** Room the high-level receive adds for messages socket options can attach (credentials, timestamps...). */
const attached = () => attachedControlSize(platform);

test("the receive buffer follows the ABI's fd budget (darwin: RLIMIT_NOFILE per receive; FreeBSD: fixed 253)", () => {
  const [a, b] = UnixStream.pair();
  const [f] = files(1);
  const cases: [bigint, number][] = [
    [256n, 256], // macOS's default soft limit
    [100n, 253], // clamped up to the floor
    [4096n, 4096],
    [k.abi.rlimit.infinity, 1 << 20], // unlimited: the ceiling
  ];
  for (const [cur, budget] of cases) {
    k.rlimitNofile = { cur, max: k.abi.rlimit.infinity };
    const calls = k.calls.get("getrlimit") ?? 0;
    a.sendFdsSync("x", [f!]);
    using got = b.recvFdsSync(1);
    expect(got.fds.length).toBe(1);
    got[Symbol.dispose]();
    expect({ cur, controllen: k.lastRecvControllen }).toEqual({ cur, controllen: space(isDarwin ? budget : 253) + attached() });
    expect((k.calls.get("getrlimit") ?? 0) - calls).toBe(isDarwin ? 1 : 0);
  }
  k.rlimitNofile = { cur: 256n, max: k.abi.rlimit.infinity };
  a.close();
  b.close();
  closeRaw(f!);
});

test.skipIf(isDarwin)("FreeBSD: two rights messages, room for the first: it is delivered, the second disposed of", () => {
  const base = k.openFds();
  const [a, b] = UnixDatagram.pair();
  const [f, g] = files(2);
  const send = new SocketAncillary(new Uint8Array(2 * space(1)));
  send.addFds([f!]);
  send.addFds([g!]);
  expect(cmsgSendmsg(a, ["x"], send)).toBe(1);
  const withSockets = k.openFds();
  const anc = new SocketAncillary(new Uint8Array(space(1) + 4));
  const r = cmsgRecvmsg(b, [new Uint8Array(8)], anc);
  expect(r.truncated).toBe(true);
  const got = [...anc.messages()].flatMap((m) => (m.type === "rights" ? [...m.fds] : []));
  expect(got.map((o) => k.describeFd(o.fd)!.name)).toEqual(["f0"]);
  for (const o of got) o.close();
  anc.clear();
  expect(k.openFds()).toEqual(withSockets);
  a.close();
  b.close();
  closeRaw(f!, g!);
  expectFds(base);
});

test.skipIf(!isDarwin)("darwin: xnu takes one SCM_RIGHTS message per send; two are refused with EINVAL and nothing leaks", () => {
  const base = k.openFds();
  const [a, b] = UnixDatagram.pair();
  const [f, g] = files(2);
  const send = new SocketAncillary(new Uint8Array(2 * space(1)));
  send.addFds([f!]);
  send.addFds([g!]);
  expect(() => cmsgSendmsg(a, ["x"], send)).toThrow(expect.objectContaining({ code: "EINVAL" }));
  send.clear();
  a.close();
  b.close();
  closeRaw(f!, g!);
  expectFds(base);
});
