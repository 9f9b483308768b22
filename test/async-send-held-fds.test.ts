/**
 * An async send that has to wait (socket full, or queued behind another send) holds its own duplicates
 * of the fds it was given, from call time until it settles: the caller may close its fds right after
 * the call, and a number reused meanwhile by another file never reaches the peer. The duplicates are
 * closed on every path (sent, aborted, socket closed).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { OwnedFd, SystemError, UnixSeqpacket, UnixStream } from "../src/index.ts";
import { shutdownReactor } from "../src/async/reactor.ts";
import { fdTarget } from "./helpers/fds.ts";
import { closeRaw, pipeRaw, setNonblocking } from "./fixtures/libc.ts";

afterAll(async () => {
  await shutdownReactor();
});

/** A pipe read end: its own inode ("pipe:[n]"), so /proc/self/fd tells it apart. */
function pipeEnd(): number {
  const [r, w] = pipeRaw();
  closeRaw(w);
  return r;
}

/** How many open fds of this process point at `target` (only the test's own pipe can). */
function openCopies(target: string): number {
  let n = 0;
  for (const name of readdirSync("/proc/self/fd")) if (fdTarget(Number(name)) === target) n++;
  return n;
}

type Sock = UnixStream | UnixSeqpacket;
const chunk = new Uint8Array(4096);

/** Fills a's send path (a non-blocking socket) until sendmsg says EAGAIN. */
function fill(a: Sock): void {
  setNonblocking(a.fd);
  for (let i = 0; i < 100_000; i++) {
    try {
      a.sendFdsSync(chunk);
    } catch (e) {
      if (e instanceof SystemError && e.code === "EAGAIN") return;
      throw e;
    }
  }
  throw new Error("the socket never filled");
}

/** Receives until a message carries fds; returns their targets (closing them). */
async function drainUntilFds(b: Sock): Promise<(string | null)[]> {
  for (;;) {
    const r = await b.recvFds(4, { bufferSize: 65536 });
    try {
      if (r.fds.length > 0) return r.fds.map((f) => fdTarget(f.fd));
      if (r.data.byteLength === 0) throw new Error("EOF before the fds arrived");
    } finally {
      r[Symbol.dispose]();
    }
  }
}

type Send = (a: Sock, fds: (number | OwnedFd)[], signal?: AbortSignal) => Promise<unknown>;
const SENDS: [string, Send, boolean][] = [
  ["sendFds", (a, fds, signal) => a.sendFds("x", fds, { signal }), false],
  ["sendFdsVectored", (a, fds, signal) => a.sendFdsVectored(["x", "y"], fds, { signal }), false],
  ["sendFdsAll", (a, fds, signal) => (a as UnixStream).sendFdsAll("x".repeat(10), fds, { signal }), true],
];

const KINDS: [string, () => [Sock, Sock]][] = [
  ["UnixStream", () => UnixStream.pair()],
  ["UnixSeqpacket", () => UnixSeqpacket.pair()],
];

describe("a waiting async send delivers the file named at call time", () => {
  for (const [kind, make] of KINDS) {
    for (const [name, send, streamOnly] of SENDS) {
      if (streamOnly && kind !== "UnixStream") continue;
      for (const why of ["socket full", "queued behind another send"] as const) {
        test(`${kind} ${name} (${why}): raw fd closed right after the call and its number reused`, async () => {
          const [a, b] = make();
          try {
            fill(a);
            const before = why === "queued behind another send" ? a.sendFds(chunk) : null;
            const raw = pipeEnd();
            const original = fdTarget(raw)!;
            const p = send(a, [raw]);
            closeRaw(raw);
            const reuser = pipeEnd(); // the lowest free number: the one just closed
            expect(reuser).toBe(raw);
            const impostor = fdTarget(reuser)!;
            expect(impostor).not.toBe(original);
            const targets = await drainUntilFds(b);
            await p;
            await before;
            expect(targets).toEqual([original]);
            closeRaw(reuser);
            expect(openCopies(original)).toBe(0); // the held duplicate was closed
            expect(openCopies(impostor)).toBe(0);
          } finally {
            a.close();
            b.close();
          }
        });
      }
    }
  }

  test("an OwnedFd closed right after the call: the waiting send still delivers its file", async () => {
    const [a, b] = UnixSeqpacket.pair();
    try {
      fill(a);
      const owned = OwnedFd.from(pipeEnd());
      const original = fdTarget(owned.fd)!;
      const p = a.sendFds("x", [owned]);
      owned.close();
      expect(await drainUntilFds(b)).toEqual([original]);
      await p;
      expect(openCopies(original)).toBe(0);
    } finally {
      a.close();
      b.close();
    }
  });

  test("a send that goes at once holds nothing (the caller's fd is sent as is)", async () => {
    const [a, b] = UnixSeqpacket.pair();
    const raw = pipeEnd();
    const original = fdTarget(raw)!;
    try {
      const p = a.sendFds("x", [raw]);
      expect(openCopies(original)).toBe(1); // only the caller's own fd
      await p;
      expect(await drainUntilFds(b)).toEqual([original]);
    } finally {
      closeRaw(raw);
      a.close();
      b.close();
    }
  });
});

describe("the held duplicates are closed on every path", () => {
  for (const [name, send] of SENDS) {
    test(`${name}: aborted while waiting`, async () => {
      const [a, b] = UnixStream.pair();
      try {
        fill(a);
        const raw = pipeEnd();
        const original = fdTarget(raw)!;
        const ac = new AbortController();
        const p = send(a, [raw], ac.signal);
        closeRaw(raw);
        expect(openCopies(original)).toBe(1); // the held duplicate
        ac.abort();
        const err = await p.then(
          () => null,
          (e: unknown) => e,
        );
        expect((err as { code?: string }).code).toBe("ERR_UA_ABORTED");
        expect(openCopies(original)).toBe(0);
      } finally {
        a.close();
        b.close();
      }
    });

    test(`${name}: aborted while queued behind another send`, async () => {
      const [a, b] = UnixStream.pair();
      try {
        fill(a);
        const first = a.sendFds(chunk).catch((e: unknown) => e);
        const raw = pipeEnd();
        const original = fdTarget(raw)!;
        const ac = new AbortController();
        const p = send(a, [raw], ac.signal);
        closeRaw(raw);
        ac.abort();
        const err = await p.then(
          () => null,
          (e: unknown) => e,
        );
        expect((err as { code?: string }).code).toBe("ERR_UA_ABORTED");
        expect(openCopies(original)).toBe(0);
        a.close();
        await first;
      } finally {
        a.close();
        b.close();
      }
    });

    test(`${name}: the socket closed while waiting`, async () => {
      const [a, b] = UnixStream.pair();
      try {
        fill(a);
        const raw = pipeEnd();
        const original = fdTarget(raw)!;
        const p = send(a, [raw]);
        closeRaw(raw);
        a.close();
        const err = await p.then(
          () => null,
          (e: unknown) => e,
        );
        expect((err as { code?: string }).code).toBe("ERR_UA_CLOSED");
        expect(openCopies(original)).toBe(0);
      } finally {
        a.close();
        b.close();
      }
    });
  }
});
