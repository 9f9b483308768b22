/**
 * Async API across real processes: child Bun processes (process.execPath) run fixture scripts
 * (test/fixtures/async-*.ts) that wrap fd 3, one end of a socketpair passed through Bun.spawn's stdio
 * array, as a UnixStream. The parent closes its copy of the child's end right after spawning, so the
 * child's death is visible as EOF.
 *
 * Timing bounds are the requirements, not tight expectations: "a child whose async work is done exits
 * within 1 s" is the requirement (a reactor Worker that stays ref'ed would keep it alive
 * forever); "a pending receive keeps the process alive" is checked after 500 ms.
 */
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { SystemError, UnixStream, type ReceivedFds } from "../src/index.ts";
import * as sys from "../src/sys.ts";
import { fdTarget, expectNoFdLeak } from "./helpers/fds.ts";

const fixture = (name: string) => join(import.meta.dir, "fixtures", name);
const text = (u: Uint8Array) => new TextDecoder().decode(u);

// The reactor starts lazily and keeps fds of its own (poll fd + wake fd, plus the Worker thread's own
// event loop fds): start it once so they are part of every baseline.
beforeAll(async () => {
  const [a, b] = UnixStream.pair();
  const p = b.recvFds(0);
  await Bun.sleep(5);
  a.sendFdsSync("w");
  await p;
  a.close();
  b.close();
});

const children: Bun.Subprocess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill(9);
});

/** Spawns a fixture with one end of a fresh stream socketpair as its fd 3; returns the parent's end. */
function spawnWithSocket(name: string, args: string[] = []): { proc: Bun.Subprocess; sock: UnixStream } {
  const [mine, theirs] = UnixStream.pair();
  let proc: Bun.Subprocess;
  try {
    proc = Bun.spawn([process.execPath, fixture(name), ...args], {
      stdio: ["inherit", "inherit", "inherit", theirs.fd],
      env: { ...process.env },
    });
  } catch (e) {
    mine.close();
    theirs.close();
    throw e;
  }
  theirs.close(); // the child holds its own copy now
  children.push(proc);
  return { proc, sock: mine };
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what}: did not settle within ${ms} ms`)), ms);
    }),
  ]);
}

/** Waits for the child's "R" (it is up and about to wait in its own recvFds). */
async function ready(sock: UnixStream): Promise<void> {
  const r = await within(sock.recvFds(0), 15000, "child ready");
  expect(text(r.data)).toBe("R");
}

describe("child processes", () => {
  test("ping-pong: 200 round trips with one fd per message between two processes", async () => {
    await expectNoFdLeak(async () => {
      const { proc, sock } = spawnWithSocket("async-echo.ts");
      await ready(sock);
      const [r, w] = sys.pipe();
      const target = fdTarget(r);
      const lat: number[] = [];
      for (let i = 0; i < 200; i++) {
        const t0 = performance.now();
        await sock.sendFds("p", [r]);
        const m: ReceivedFds = await within(sock.recvFds(1), 5000, `round trip ${i}`);
        lat.push(performance.now() - t0);
        expect(text(m.data)).toBe("q");
        expect(m.fds).toHaveLength(1);
        expect(fdTarget(m.fds[0]!.fd)).toBe(target); // the same pipe came back
        m[Symbol.dispose]();
      }
      sock.close(); // EOF: the child's loop ends and it must exit on its own
      expect(await within(proc.exited, 5000, "echo child exit")).toBe(0);
      closeSync(r);
      closeSync(w);
      lat.sort((a, b) => a - b);
      console.log(`  cross-process async round trip: p50 ${(lat[100]! * 1000).toFixed(0)} µs, p99 ${(lat[197]! * 1000).toFixed(0)} µs`);
    });
  });

  test("peer crash: the parent's pending recvFds ends with EOF (0 bytes, no fds) or ECONNRESET when the child is SIGKILLed", async () => {
    await expectNoFdLeak(async () => {
      const { proc, sock } = spawnWithSocket("async-pending.ts");
      await ready(sock);
      const recv = sock.recvFds(1);
      let settled = false;
      recv.then(
        () => (settled = true),
        () => (settled = true),
      );
      await Bun.sleep(50);
      expect(settled).toBe(false);
      proc.kill(9);
      const outcome = await within(
        recv.then(
          (m) => ({ ok: true as const, m }),
          (e) => ({ ok: false as const, e }),
        ),
        3000,
        "recvFds after peer SIGKILL",
      );
      if (outcome.ok) {
        expect(outcome.m.data.byteLength).toBe(0);
        expect(outcome.m.fds).toHaveLength(0);
      } else {
        expect(outcome.e).toBeInstanceOf(SystemError);
        expect((outcome.e as SystemError).code).toBe("ECONNRESET");
      }
      expect(await proc.exited).not.toBe(0);
      expect(proc.signalCode).toBe("SIGKILL");
      sock.close();
    });
  });

  for (const variant of ["close", "keep"] as const) {
    test(`a child that completes one async receive and returns exits by itself (socket: ${variant})`, async () => {
      await expectNoFdLeak(async () => {
        const { proc, sock } = spawnWithSocket("async-once.ts", [variant]);
        await ready(sock);
        await Bun.sleep(100); // let the child arm its wait: the receive completes through the reactor
        const fd = openSync("/dev/null", "r");
        await sock.sendFds("x", [fd]);
        closeSync(fd);
        // A reactor that stayed ref'ed after its last wait would keep the child alive forever; the
        // deadline only bounds the test (no speed is asserted: qemu-user under load needs seconds).
        try {
          expect(await within(proc.exited, 30_000, "child exit")).toBe(0);
        } finally {
          proc.kill();
          sock.close();
        }
      });
    });
  }

  test("a child with a pending receive stays alive (checked after 500 ms), then is killed", async () => {
    await expectNoFdLeak(async () => {
      const { proc, sock } = spawnWithSocket("async-pending.ts");
      await ready(sock);
      await Bun.sleep(500);
      expect(proc.exitCode).toBeNull();
      expect(proc.signalCode).toBeNull();
      proc.kill(9);
      await within(proc.exited, 5000, "killed child exit");
      expect(proc.signalCode).toBe("SIGKILL");
      sock.close();
    });
  });
});
