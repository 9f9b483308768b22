/**
 * SCM_PIDFD / SO_PEERPIDFD (Linux >= 6.5). With SO_PASSPIDFD on, the kernel installs a pidfd in the
 * receiver for every message: the low-level messages() yields it as an OwnedFd naming the sender, and
 * every high-level receive path closes it — success, surplus, count mismatch, truncation, async.
 * Identity is checked through /proc/self/fdinfo/N's `Pid:` line. Leak checks count only fds this test
 * can tell apart: pidfds naming this process (nothing else here makes those) and fds of a pipe it made.
 * Kernels or emulators without the option (qemu-user answers ENOPROTOOPT) skip, as the test names say.
 */
import { describe, expect, test } from "bun:test";
import { closeSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  cmsgRecvmsg,
  passPidfd,
  peerPidfd,
  setPassPidfd,
  SocketAncillary,
  UnixAncillaryError,
  UnixDatagram,
  UnixSeqpacket,
  UnixSeqpacketListener,
  UnixStream,
  type AncillaryMessage,
  type OwnedFd,
} from "../src/index.ts";
import { abi } from "../src/platform/index.ts";
import { pipe } from "../src/sys.ts";

function supported(): boolean {
  const [a, b] = UnixSeqpacket.pair();
  try {
    setPassPidfd(b, true);
    return true;
  } catch (e) {
    if (e instanceof UnixAncillaryError && e.code === "ERR_UA_UNSUPPORTED") return false;
    throw e;
  } finally {
    a.close();
    b.close();
  }
}
const SUPPORTED = abi.os === "linux" && supported();
const SKIP_NOTE = "(skipped where the kernel or qemu-user lacks SO_PASSPIDFD)";
const MAX = abi.maxFdsPerSend;

/** The Pid a pidfd names, from /proc/self/fdinfo. */
function pidOf(fd: number): number {
  const m = readFileSync(`/proc/self/fdinfo/${fd}`, "utf8").match(/^Pid:\s*(-?\d+)/m);
  if (!m) throw new Error(`fd ${fd} is not a pidfd`);
  return Number(m[1]);
}

/** Open pidfds naming `pid`, and open fds whose link target is `target`. */
function census(pid: number, target: string): { pidfds: number; copies: number } {
  let pidfds = 0;
  let copies = 0;
  for (const name of readdirSync("/proc/self/fd")) {
    let link: string;
    try {
      link = readlinkSync(`/proc/self/fd/${name}`);
    } catch {
      continue;
    }
    if (link === target) copies++;
    else if (link === "anon_inode:[pidfd]") {
      try {
        if (pidOf(Number(name)) === pid) pidfds++;
      } catch {
        // closed meanwhile
      }
    }
  }
  return { pidfds, copies };
}

test("unsupported platforms and kernels: ERR_UA_UNSUPPORTED; bad arguments are rejected", () => {
  const [a, b] = UnixStream.pair();
  try {
    expect(() => setPassPidfd(b, 1 as unknown as boolean)).toThrow(TypeError);
    if (!SUPPORTED) {
      expect(() => setPassPidfd(b, true)).toThrow(expect.objectContaining({ code: "ERR_UA_UNSUPPORTED" }));
      // off Linux every function refuses; an emulator may pass one getsockopt through and refuse the other
      for (const f of [() => passPidfd(b), () => peerPidfd(b)]) {
        try {
          const r = f();
          if (abi.os !== "linux") throw new Error("expected ERR_UA_UNSUPPORTED");
          if (typeof r === "object") r.close();
        } catch (e) {
          expect((e as UnixAncillaryError).code).toBe("ERR_UA_UNSUPPORTED");
        }
      }
    } else {
      expect(passPidfd(b)).toBe(false);
      setPassPidfd(b, true);
      expect(passPidfd(b)).toBe(true);
      setPassPidfd(b, false);
      expect(passPidfd(b)).toBe(false);
    }
  } finally {
    a.close();
    b.close();
  }
});

test.skipIf(!SUPPORTED)(`peerPidfd names the peer (socketpair: this process) ${SKIP_NOTE}`, () => {
  const [a, b] = UnixStream.pair();
  try {
    using fd = peerPidfd(b);
    expect(pidOf(fd.fd)).toBe(process.pid);
  } finally {
    a.close();
    b.close();
  }
});

test.skipIf(!SUPPORTED)(`messages() yields the sender's pidfd as an OwnedFd next to the rights ${SKIP_NOTE}`, () => {
  const [a, b] = UnixDatagram.pair();
  try {
    setPassPidfd(b, true);
    a.sendFdsSync("x", [0, 1]);
    using anc = new SocketAncillary(new Uint8Array(256));
    cmsgRecvmsg(b, [new Uint8Array(4)], anc);
    const got = [...anc.messages()];
    expect(got.map((m) => m.type).sort()).toEqual(["pidfd", "rights"]);
    const message = got.find((m) => m.type === "pidfd") as Extract<AncillaryMessage, { type: "pidfd" }>;
    expect(message.fds.remaining).toBe(1);
    const [pidfd] = message.fds;
    expect(pidOf(pidfd!.fd)).toBe(process.pid);
    pidfd!.close();
  } finally {
    a.close();
    b.close();
  }
});

type AnySocket = UnixStream | UnixDatagram | UnixSeqpacket;
type Path = { name: string; messageOnly?: boolean; run: (b: AnySocket, n: number) => Promise<void> | void };

const close = (fds: readonly OwnedFd[]) => {
  for (const fd of fds) fd.close();
};
const expectCode = async (f: () => unknown, code: UnixAncillaryError["code"]) => {
  try {
    await f();
  } catch (e) {
    expect((e as UnixAncillaryError).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}`);
};

const PATHS: Path[] = [
  { name: "recvFdsSync", run: (b) => close(b.recvFdsSync(MAX).fds) },
  { name: "recvFdsSync(0): surplus closed", run: (b) => close(b.recvFdsSync(0).fds) },
  { name: "recvFdsExactSync", run: (b, n) => close(b.recvFdsExactSync(n).fds) },
  { name: "recvFdsExactSync count mismatch", run: (b, n) => expectCode(() => b.recvFdsExactSync(n + 1), "ERR_UA_FD_COUNT_MISMATCH") },
  { name: "recvFdsIntoSync", run: (b) => close(b.recvFdsIntoSync(MAX, new Uint8Array(8)).fds) },
  { name: "recvFdsExactIntoSync", run: (b, n) => close(b.recvFdsExactIntoSync(n, new Uint8Array(8)).fds) },
  { name: "recvFdsVectoredSync", run: (b) => close(b.recvFdsVectoredSync(MAX, [new Uint8Array(1), new Uint8Array(7)]).fds) },
  { name: "recvFds (async)", run: async (b) => close((await b.recvFds(MAX)).fds) },
  { name: "recvFdsExact (async)", run: async (b, n) => close((await b.recvFdsExact(n)).fds) },
  { name: "recvFdsInto (async)", run: async (b) => close((await b.recvFdsInto(MAX, new Uint8Array(8))).fds) },
  { name: "recvFdsVectored (async)", run: async (b) => close((await b.recvFdsVectored(MAX, [new Uint8Array(2), new Uint8Array(6)])).fds) },
  { name: "payload truncated (MSG_TRUNC)", messageOnly: true, run: (b) => expectCode(() => b.recvFdsSync(MAX, { bufferSize: 1 }), "ERR_UA_DATAGRAM_TRUNCATED") },
  {
    name: "cmsgRecvmsg + clear() without reading",
    run: (b) => {
      const anc = new SocketAncillary(new Uint8Array(SocketAncillary.bufferSizeForRights(MAX) + 64));
      cmsgRecvmsg(b, [new Uint8Array(8)], anc);
      anc.clear();
    },
  },
  {
    name: "cmsgRecvmsg + messages() broken off after the first (yielded, ignored) + dispose",
    run: (b) => {
      using anc = new SocketAncillary(new Uint8Array(SocketAncillary.bufferSizeForRights(MAX) + 64));
      cmsgRecvmsg(b, [new Uint8Array(8)], anc);
      for (const m of anc.messages()) {
        void m; // neither its fds nor the pidfd are taken: the buffer still owns them
        break;
      }
    },
  },
  {
    name: "cmsgRecvmsg with a control buffer too small (MSG_CTRUNC) + clear()",
    run: (b) => {
      const anc = new SocketAncillary(new Uint8Array(SocketAncillary.bufferSizeForRights(1)));
      cmsgRecvmsg(b, [new Uint8Array(8)], anc);
      anc.clear();
    },
  },
];

const SOCKETS = [
  ["stream", () => UnixStream.pair()],
  ["datagram", () => UnixDatagram.pair()],
  ["seqpacket", () => UnixSeqpacket.pair()],
] as const;

describe("every receive path closes the pidfd (and every rights fd it does not return)", () => {
  for (const [kind, pair] of SOCKETS) {
    for (const path of PATHS) {
      if (path.messageOnly && kind === "stream") continue;
      test.skipIf(!SUPPORTED)(`${kind}: ${path.name}, 0 / 1 / ${MAX} rights fds ${SKIP_NOTE}`, async () => {
        const [r, w] = pipe();
        const target = readlinkSync(`/proc/self/fd/${r}`);
        const [a, b] = pair();
        try {
          setPassPidfd(b, true);
          const before = census(process.pid, target);
          for (const n of [0, 1, MAX]) {
            a.sendFdsSync("xyz", new Array<number>(n).fill(r));
            await path.run(b, n);
            expect({ n, ...census(process.pid, target) }).toEqual({ n, ...before });
          }
        } finally {
          a.close();
          b.close();
          closeSync(r);
          closeSync(w);
        }
      });
    }
  }
});

describe("Python peer (socket.send_fds) to a receiver with SO_PASSPIDFD", () => {
  test.skipIf(!SUPPORTED)(`every high-level receive closes the peer's pidfd; messages() yields one naming the peer ${SKIP_NOTE}`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "ua-pidfd-"));
    const path = join(dir, "s");
    const listener = UnixSeqpacketListener.bindSync(path);
    const ROUNDS = 40;
    const script = `
import socket, os, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.recv(1)  # the receiver has turned SO_PASSPIDFD on
r, w = os.pipe()
for i in range(int(sys.argv[2])):
    socket.send_fds(s, [b"m%d" % i], [r, w, r][: i % 4])
s.recv(1)  # wait until the receiver is done
`;
    const py = Bun.spawn(["python3", "-c", script, path, String(ROUNDS + 1)], { stdout: "inherit", stderr: "inherit" });
    const conn = listener.acceptSync();
    try {
      setPassPidfd(conn, true);
      conn.sendFdsSync("g", []);
      using peer = peerPidfd(conn);
      expect(pidOf(peer.fd)).toBe(py.pid);
      const base = census(py.pid, "none").pidfds;
      let lowLevelPidfds = 0;
      for (let i = 0; i < ROUNDS; i++) {
        const receives = [
          () => conn.recvFdsSync(MAX).fds,
          () => conn.recvFdsIntoSync(1, new Uint8Array(16)).fds,
          () => conn.recvFdsVectoredSync(0, [new Uint8Array(16)]).fds,
          () => {
            // the low-level view of the same stream of messages: the pidfd really is there
            using anc = new SocketAncillary(new Uint8Array(256));
            cmsgRecvmsg(conn, [new Uint8Array(16)], anc);
            for (const m of anc.messages()) {
              if (m.type !== "pidfd") continue;
              const [pidfd] = m.fds;
              expect(pidOf(pidfd!.fd)).toBe(py.pid);
              pidfd!.close();
              lowLevelPidfds++;
            }
            return [];
          },
        ];
        const fds = receives[i % receives.length]!();
        expect(fds.length).toBeLessThanOrEqual(3);
        close(fds);
        expect(census(py.pid, "none").pidfds).toBe(base);
      }
      expect(lowLevelPidfds).toBe(ROUNDS / 4);
      const anc = new SocketAncillary(new Uint8Array(256));
      cmsgRecvmsg(conn, [new Uint8Array(16)], anc);
      const m = [...anc.messages()].find((x) => x.type === "pidfd") as Extract<AncillaryMessage, { type: "pidfd" }>;
      const taken = m.fds.next().value!;
      expect(pidOf(taken.fd)).toBe(py.pid);
      anc.clear(); // a taken fd is the caller's: clear() leaves it open
      expect(census(py.pid, "none").pidfds).toBe(base + 1);
      taken.close();
      expect(census(py.pid, "none").pidfds).toBe(base);
      conn.sendFdsSync("k", []);
      expect(await py.exited).toBe(0);
    } finally {
      conn.close();
      listener.close();
      if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    }
  });
});
