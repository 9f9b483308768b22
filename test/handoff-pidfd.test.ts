/**
 * The handoff's peer check with SO_PEERPIDFD (Linux >= 6.5): the old side takes the upgrader's pidfd
 * when it accepts it, lends it to onUpgrade as UpgradePeer.pidfd, refuses an upgrader that exited
 * (its SO_PEERCRED pid may already name another process) right before the offer, and closes the pidfd
 * on every path: commit, refusal by peerPolicy / onUpgrade, a throwing or timed-out onUpgrade. The new
 * side refuses an old side whose process is gone. Without SO_PEERPIDFD, pidfd is null and the check
 * is SO_PEERCRED alone.
 *
 * Peers that exit while their socket lives on are children (fixtures/handoff-exiting-peer.ts) that
 * send their connected socket (or their listener) to this process over fd 3 before exiting. Every step
 * waits for an event (the child's exit, a frame): no timing assertions. Leak checks count pidfds naming
 * this process (only the handoff makes those here) and check the lent OwnedFd itself.
 */
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OwnedFd, peerPidfd, UnixAncillaryError, UnixSeqpacket, UnixSeqpacketListener, UnixStream } from "../src/index.ts";
import { requestHandoff, serveHandoff, type HandoffServer, type UpgradePeer } from "../src/handoff/index.ts";
import { decodeFrame, encodeFrame, FrameType, MAX_FDS } from "../src/handoff/protocol.ts";
import { abi } from "../src/platform/index.ts";
import * as sys from "../src/sys.ts";

function supported(): boolean {
  if (abi.os !== "linux") return false;
  const [a, b] = UnixSeqpacket.pair();
  try {
    peerPidfd(b).close();
    return true;
  } catch (e) {
    if (e instanceof UnixAncillaryError && e.code === "ERR_UA_UNSUPPORTED") return false;
    throw e;
  } finally {
    a.close();
    b.close();
  }
}
const SUPPORTED = supported();
const NOTE = "(skipped without SO_PEERPIDFD: Linux < 6.5, qemu-user, not Linux)";
const FIXTURE = join(import.meta.dir, "fixtures", "handoff-exiting-peer.ts");

/** The Pid a pidfd names, from /proc/self/fdinfo. */
function pidOf(fd: number): number {
  const m = readFileSync(`/proc/self/fdinfo/${fd}`, "utf8").match(/^Pid:\s*(-?\d+)/m);
  if (!m) throw new Error(`fd ${fd} is not a pidfd`);
  return Number(m[1]);
}

/** Open pidfds naming `pid`. */
function pidfdsNaming(pid: number): number {
  let n = 0;
  for (const name of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${name}`) === "anon_inode:[pidfd]" && pidOf(Number(name)) === pid) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

let base = "";
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), "ua-ho-pidfd-"));
  chmodSync(base, 0o700);
  return () => rmSync(base, { recursive: true, force: true });
});
let n = 0;
const ctlPath = () => join(base, `c${n++}`, "ctl.sock");

function oldServer(): Bun.Server<unknown> {
  const s = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("old") });
  cleanups.push(() => s.stop(true));
  return s;
}

function track(ho: HandoffServer): HandoffServer {
  cleanups.push(() => ho.close());
  return ho;
}

/** Waits (without blocking the event loop: the old side runs in this process) for one frame. */
async function reply(s: UnixSeqpacket): Promise<{ type: number; payload: Record<string, unknown>; fds: number }> {
  const end = performance.now() + 15_000;
  while (sys.pollOne(s.fd, 1, 0) === 0 && performance.now() < end) await Bun.sleep(1);
  using got = s.recvFdsSync(MAX_FDS, { bufferSize: 70_000 });
  const f = decodeFrame(got.data, got.fds.length);
  return { type: f.type, payload: f.payload as Record<string, unknown>, fds: got.fds.length };
}

/** Starts the fixture with a socketpair end as its fd 3; returns the child and the fd it sent back. */
async function exitingPeer(mode: "connect" | "listen", path: string): Promise<{ child: Bun.Subprocess; back: UnixStream; got: OwnedFd }> {
  const [back, childEnd] = UnixStream.pair();
  const child = Bun.spawn([process.execPath, FIXTURE, mode, path], { stdio: ["ignore", "inherit", "inherit", childEnd.fd] });
  childEnd.close();
  cleanups.push(async () => {
    back.close();
    if (child.exitCode === null) child.kill("SIGKILL");
    await child.exited;
  });
  // the child needs a moment to start; the old side's accept loop may run meanwhile
  const end = performance.now() + 30_000;
  while (sys.pollOne(back.fd, 1, 0) === 0 && performance.now() < end) await Bun.sleep(5);
  const r = back.recvFdsExactSync(1);
  const [got] = r.fds;
  return { child, back, got: got! };
}

describe.skipIf(!SUPPORTED)(`UpgradePeer.pidfd ${NOTE}`, () => {
  test("onUpgrade sees a pidfd naming the upgrader; it is closed after the commit", async () => {
    const path = ctlPath();
    const seen: Array<{ pid: number | null; fdinfoPid: number; pidfd: OwnedFd }> = [];
    const ho = track(
      serveHandoff(
        { http: oldServer() },
        {
          path,
          onUpgrade: (p: UpgradePeer) => {
            seen.push({ pid: p.pid, fdinfoPid: pidOf(p.pidfd!.fd), pidfd: p.pidfd! });
          },
        },
      ),
    );
    expect(pidfdsNaming(process.pid)).toBe(0);
    const h = await requestHandoff({ path });
    h.take("http").fd.close();
    expect((await h.ready()).confirmed).toBe(true);
    await ho.upgraded;
    // both ends in this process: the upgrader is us
    expect(seen.length).toBe(1);
    expect(seen[0]!.pid).toBe(process.pid);
    expect(seen[0]!.fdinfoPid).toBe(process.pid);
    expect(seen[0]!.pidfd.closed).toBe(true);
    expect(pidfdsNaming(process.pid)).toBe(0);
  });

  test("another process as the upgrader: onUpgrade's pidfd has its pid", async () => {
    const path = ctlPath();
    const seen: Array<{ pid: number | null; fdinfoPid: number; pidfd: OwnedFd }> = [];
    const failures: Error[] = [];
    const ho = track(
      serveHandoff(
        { http: oldServer() },
        {
          path,
          onUpgrade: (p) => {
            seen.push({ pid: p.pid, fdinfoPid: pidOf(p.pidfd!.fd), pidfd: p.pidfd! });
            return false;
          },
          onFailure: (e) => failures.push(e),
        },
      ),
    );
    const { child, back, got } = await exitingPeer("connect", path);
    using s = UnixSeqpacket.fromFd(got);
    const attempt = ho.nextAttempt();
    s.sendFdsSync(encodeFrame(FrameType.Hello, { pid: child.pid }));
    const f = await reply(s);
    expect(f).toMatchObject({ type: FrameType.Abort, payload: { code: "ERR_UA_PEER_REJECTED" }, fds: 0 });
    expect((await attempt).ok).toBe(false);
    expect(seen.length).toBe(1);
    expect(seen[0]!.pid).toBe(child.pid);
    expect(seen[0]!.fdinfoPid).toBe(child.pid);
    expect(seen[0]!.pidfd.closed).toBe(true);
    expect(failures[0]!.message).toMatch(/onUpgrade refused/);
    back.close(); // lets the child exit
    await child.exited;
  });

  test("refused by onUpgrade (false), a throwing onUpgrade, peerPolicy, a timed-out onUpgrade: the pidfd is closed each time", async () => {
    const lent: OwnedFd[] = [];
    const cases: Array<{ opts: Parameters<typeof serveHandoff>[1]; code: string }> = [
      {
        opts: {
          onUpgrade: (p) => {
            lent.push(p.pidfd!);
            return false;
          },
        },
        code: "ERR_UA_PEER_REJECTED",
      },
      {
        opts: {
          onUpgrade: (p) => {
            lent.push(p.pidfd!);
            throw new Error("no thanks");
          },
        },
        code: "ERR_UA_PEER_REJECTED",
      },
      { opts: { peerPolicy: () => "nobody may", onFailure: (_e, p) => lent.push(p!.pidfd!) }, code: "ERR_UA_PEER_REJECTED" },
      // never settles: the attempt's deadline ends it (only the outcome is asserted, not when)
      {
        opts: {
          timeoutMs: 200,
          onUpgrade: (p) => {
            lent.push(p.pidfd!);
            return new Promise<boolean>(() => {});
          },
        },
        code: "ERR_UA_TIMEOUT",
      },
    ];
    for (const c of cases) {
      const path = ctlPath();
      const ho = track(serveHandoff({ http: oldServer() }, { path, ...c.opts }));
      const attempt = ho.nextAttempt();
      await expect(requestHandoff({ path })).rejects.toMatchObject({ code: c.code });
      expect(await attempt).toMatchObject({ ok: false });
      expect(ho.state).toBe("idle");
      ho.close();
    }
    expect(lent.length).toBe(cases.length);
    for (const fd of lent) expect(fd.closed).toBe(true);
    expect(pidfdsNaming(process.pid)).toBe(0);
  });

  test("an upgrader that exited before the offer is refused with a clear error; no fd is sent", async () => {
    const path = ctlPath();
    const failures: Error[] = [];
    let lent: OwnedFd | null = null;
    let exited: Promise<number> | null = null;
    let back: UnixStream | null = null;
    const ho = track(
      serveHandoff(
        { http: oldServer() },
        {
          path,
          onFailure: (e) => failures.push(e),
          onUpgrade: async (p) => {
            lent = p.pidfd;
            // alive so far: now let it exit (and be reaped) before the offer goes out
            expect(pidOf(p.pidfd!.fd)).toBe(p.pid!);
            back!.close();
            await exited;
            return true;
          },
        },
      ),
    );
    const peer = await exitingPeer("connect", path);
    back = peer.back;
    exited = peer.child.exited;
    using s = UnixSeqpacket.fromFd(peer.got);
    const attempt = ho.nextAttempt();
    s.sendFdsSync(encodeFrame(FrameType.Hello, { pid: peer.child.pid }));
    const f = await reply(s);
    // the socket outlived the process: without the pidfd check the offer would have gone out
    expect(f).toMatchObject({ type: FrameType.Abort, payload: { code: "ERR_UA_PEER_REJECTED" }, fds: 0 });
    expect(String(f.payload.message)).toMatch(new RegExp(`process ${peer.child.pid} has exited`));
    const r = await attempt;
    expect(r.ok).toBe(false);
    expect((r as { error: Error }).error.message).toMatch(/upgrader rejected .*has exited.*may already name another process/);
    expect(failures.length).toBe(1);
    expect(lent!.closed).toBe(true);
    expect(ho.state).toBe("idle");
    // the next upgrader is served as usual
    const h = await requestHandoff({ path });
    h.take("http").fd.close();
    expect((await h.ready()).confirmed).toBe(true);
  });

  test("an upgrader that exited before it was accepted is refused at once (onUpgrade never runs)", async () => {
    const dir = mkdtempSync(join(base, "l-"));
    const path = join(dir, "open.sock");
    using l = UnixSeqpacketListener.bindSync(path);
    const peer = await exitingPeer("connect", path);
    peer.back.close();
    await peer.child.exited;
    using s = UnixSeqpacket.fromFd(peer.got);
    s.sendFdsSync(encodeFrame(FrameType.Hello, { pid: peer.child.pid }));
    let calls = 0;
    const failures: Error[] = [];
    const ho = track(serveHandoff({ http: oldServer() }, { socket: l.acceptSync(), onUpgrade: () => void calls++, onFailure: (e) => failures.push(e) }));
    const f = await reply(s);
    expect(f).toMatchObject({ type: FrameType.Abort, payload: { code: "ERR_UA_PEER_REJECTED" }, fds: 0 });
    expect(String(f.payload.message)).toMatch(/has exited/);
    await expect(ho.upgraded).rejects.toThrow();
    expect(calls).toBe(0);
    expect(failures[0]!.message).toMatch(new RegExp(`pid ${peer.child.pid}\\b.*has exited`));
  });

  test("requestHandoff refuses an old side whose process is gone (its control socket lives on elsewhere)", async () => {
    const dir = mkdtempSync(join(base, "l-"));
    const path = join(dir, "ctl.sock");
    const peer = await exitingPeer("listen", path);
    using l = UnixSeqpacketListener.fromFd(peer.got);
    peer.back.close();
    await peer.child.exited;
    // connect() completes from the backlog; SO_PEERCRED names the dead listen()-er
    const err = await requestHandoff({ path, timeoutMs: 5000 }).then(
      () => null,
      (e: unknown) => e as UnixAncillaryError,
    );
    expect(err).toBeInstanceOf(UnixAncillaryError);
    expect(err!.code).toBe("ERR_UA_PEER_REJECTED");
    expect(err!.message).toMatch(new RegExp(`old side rejected \\(pid ${peer.child.pid}\\b.*has exited`));
    expect(l.closed).toBe(false);
    expect(pidfdsNaming(peer.child.pid)).toBe(0);
  });

  test("spawn mode: pidfd is null (the socketpair's SO_PEERPIDFD names this process), the successor's pid comes from its hello", async () => {
    const seen: UpgradePeer[] = [];
    const ho = track(serveHandoff({ http: oldServer() }, {
          onUpgrade: (p) => {
            seen.push({ ...p });
            return false;
          },
        }));
    const r = await ho.spawn([process.execPath, FIXTURE, "spawned"], { stdout: "ignore", timeoutMs: 15_000 });
    expect(r.ok).toBe(false);
    expect((r as { error: Error }).error.message).toMatch(/onUpgrade refused/);
    // onUpgrade ran, so the successor's hello came: its own check of the old side (with a pidfd naming
    // this process, the socketpair's creator) passed first
    expect(seen.length).toBe(1);
    expect(seen[0]!.pidfd).toBeNull();
    expect(seen[0]!.pid).toBe(r.child!.pid);
    expect(pidfdsNaming(process.pid)).toBe(0);
  });
});

test.skipIf(SUPPORTED)("without SO_PEERPIDFD, UpgradePeer.pidfd is null and the upgrade works on SO_PEERCRED alone", async () => {
  const path = ctlPath();
  const seen: UpgradePeer[] = [];
  const ho = track(serveHandoff({ http: oldServer() }, { path, onUpgrade: (p) => void seen.push({ ...p }) }));
  const h = await requestHandoff({ path });
  h.take("http").fd.close();
  expect((await h.ready()).confirmed).toBe(true);
  await ho.upgraded;
  expect(seen.length).toBe(1);
  expect(seen[0]!.pidfd).toBeNull();
});
