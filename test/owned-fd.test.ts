/**
 * OwnedFd: closed exactly once, never touches a number it no longer owns, release/dup/from semantics,
 * `using`, and the FinalizationRegistry leak net (docs/design.md, "Ownership rules": "closed exactly once", "a closed state
 * that makes further use throw", FinalizationRegistry only as a last-resort backstop).
 */
import { describe, expect, test } from "bun:test";
import { OwnedFd } from "../src/owned-fd.ts";
import { UnixStream } from "../src/socket.ts";
import { UnixAncillaryError } from "../src/errors.ts";
import { fdTarget, fdSnapshot, expectNoNewFds } from "./helpers/fds.ts";
import { closeRaw, hasCloexec, isOpen, openRaw } from "./fixtures/libc.ts";

function expectClosedError(f: () => unknown): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(UnixAncillaryError);
  expect((err as UnixAncillaryError).code).toBe("ERR_UA_CLOSED");
  expect((err as UnixAncillaryError).kind).toBe("Closed");
}

/** Lets two event-loop turns pass (the leak net registers pending OwnedFds on the next turn). */
async function nextTurns(): Promise<void> {
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
}

async function gcUntil(cond: () => boolean, ms = 2000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    Bun.gc(true);
    await Bun.sleep(10);
    if (cond()) return true;
  }
  return cond();
}

describe("OwnedFd", () => {
  test("fd getter throws ERR_UA_CLOSED after close()", () => {
    const n = openRaw("/dev/null");
    const o = OwnedFd.from(n);
    expect(o.fd).toBe(n);
    expect(o.closed).toBe(false);
    expect(o.isValid()).toBe(true);
    o.close();
    expect(o.closed).toBe(true);
    expect(o.isValid()).toBe(false);
    expect(isOpen(n)).toBe(false);
    expectClosedError(() => o.fd);
    expectClosedError(() => o.dup());
    expectClosedError(() => o.release());
    expect(String(o)).toBe("OwnedFd(closed)");
  });

  test("fd getter throws ERR_UA_CLOSED after release()", () => {
    const n = openRaw("/dev/null");
    const o = OwnedFd.from(n);
    expect(String(o)).toBe(`OwnedFd(${n})`);
    expect(o.release()).toBe(n);
    expect(o.closed).toBe(true);
    expectClosedError(() => o.fd);
    expect(isOpen(n)).toBe(true);
    closeRaw(n);
  });

  test("close() is idempotent and never closes a reused number", () => {
    const baseline = fdSnapshot();
    const n = openRaw("/dev/null");
    const o = OwnedFd.from(n);
    o.close();
    expect(isOpen(n)).toBe(false);
    const other = openRaw("/dev/zero");
    expect(other).toBe(n); // precondition: the number was reused
    o.close();
    o[Symbol.dispose]();
    expect(isOpen(other)).toBe(true);
    expect(fdTarget(other)).toBe("/dev/zero");
    closeRaw(other);
    expectNoNewFds(baseline);
  });

  test("release() returns the number and ends ownership: close/dispose afterwards do nothing", () => {
    const n = openRaw("/dev/null");
    const o = OwnedFd.from(n);
    const r = o.release();
    expect(r).toBe(n);
    o.close();
    o[Symbol.dispose]();
    expect(isOpen(n)).toBe(true);
    closeRaw(n);
  });

  test("dup() gives a distinct CLOEXEC fd on the same file; the two close independently", () => {
    const baseline = fdSnapshot();
    const o = OwnedFd.from(openRaw("/dev/null"));
    const d = o.dup();
    expect(d).toBeInstanceOf(OwnedFd);
    expect(d.fd).not.toBe(o.fd);
    expect(hasCloexec(d.fd)).toBe(true);
    expect(fdTarget(d.fd)).toBe("/dev/null");
    const dn = d.fd;
    o.close();
    expect(isOpen(dn)).toBe(true);
    d.close();
    expect(isOpen(dn)).toBe(false);
    expectNoNewFds(baseline);
  });

  test("from() validates: TypeError ERR_INVALID_ARG_TYPE for non-integers, RangeError ERR_OUT_OF_RANGE for out-of-range", () => {
    for (const bad of [1.5, NaN, Infinity, "3", null, undefined, {}, [], 3n, true]) {
      let err: unknown;
      try {
        OwnedFd.from(bad as number);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TypeError);
      expect((err as TypeError & { code: string }).code).toBe("ERR_INVALID_ARG_TYPE");
      expect((err as Error).message).toContain('"fd"');
    }
    for (const bad of [-1, -100, 2 ** 31, 2 ** 40]) {
      let err: unknown;
      try {
        OwnedFd.from(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(RangeError);
      expect((err as RangeError & { code: string }).code).toBe("ERR_OUT_OF_RANGE");
      expect((err as Error).message).toContain('"fd"');
    }
  });

  test("the constructor is not public", () => {
    const Ctor = OwnedFd as unknown as new (fd: number, token?: unknown) => OwnedFd;
    expect(() => new Ctor(0)).toThrow(TypeError);
    expect(() => new Ctor(0, Symbol("OwnedFd.internal"))).toThrow(TypeError);
  });

  test("`using` closes at scope exit", () => {
    const baseline = fdSnapshot();
    const n = openRaw("/dev/null");
    {
      using o = OwnedFd.from(n);
      expect(o.fd).toBe(n);
    }
    expect(isOpen(n)).toBe(false);
    expectNoNewFds(baseline);
  });

  test("`using` on a released OwnedFd leaves the number open", () => {
    const n = openRaw("/dev/null");
    {
      using o = OwnedFd.from(n);
      o.release();
    }
    expect(isOpen(n)).toBe(true);
    closeRaw(n);
  });
});

describe("FinalizationRegistry leak net", () => {
  function leakOne(path: string): number {
    const n = openRaw(path);
    OwnedFd.from(n); // dropped without close()
    return n;
  }

  test("an OwnedFd dropped without close() is closed after GC", async () => {
    const baseline = fdSnapshot();
    const leaked: number[] = [];
    for (let i = 0; i < 4; i++) leaked.push(leakOne("/dev/null"));
    for (const n of leaked) expect(fdTarget(n)).toBe("/dev/null");
    const closedAll = await gcUntil(() => leaked.every((n) => fdTarget(n) !== "/dev/null"));
    expect(closedAll).toBe(true);
    expectNoNewFds(baseline);
  });

  test("the net is only a net: a live OwnedFd is not closed by GC", async () => {
    const o = OwnedFd.from(openRaw("/dev/null"));
    const n = o.fd;
    await gcUntil(() => false, 150);
    expect(isOpen(n)).toBe(true);
    expect(o.fd).toBe(n); // keeps `o` reachable until here
    o.close();
  });

  // OwnedFd joins the registry on the next event-loop turn; an object closed before then never joins.
  // Both paths must leave a reused/released number alone.
  for (const enrolled of [false, true]) {
    const when = enrolled ? "after it joined the leak net" : "before it joined the leak net";
    test(`a closed OwnedFd that is collected later does not close a reused number (closed ${when})`, async () => {
      const baseline = fdSnapshot();
      let n = -1;
      await (async () => {
        const o = OwnedFd.from(openRaw("/dev/null"));
        n = o.fd;
        if (enrolled) await nextTurns();
        o.close();
      })();
      const other = openRaw("/dev/zero");
      expect(other).toBe(n);
      await gcUntil(() => false, 300);
      expect(fdTarget(other)).toBe("/dev/zero");
      closeRaw(other);
      expectNoNewFds(baseline);
    });

    test(`a released OwnedFd that is collected later does not close the released number (released ${when})`, async () => {
      let n = -1;
      await (async () => {
        const o = OwnedFd.from(openRaw("/dev/null"));
        if (enrolled) await nextTurns();
        n = o.release();
      })();
      await gcUntil(() => false, 300);
      expect(fdTarget(n)).toBe("/dev/null");
      closeRaw(n);
    });
  }
});

describe("closing a received batch (closeAll / dispose)", () => {
  for (const enrolled of [false, true]) {
    test(`closes exactly the fds still owned, once each, ${enrolled ? "after the batch joined the leak net" : "before the batch joined the leak net"}`, async () => {
      const baseline = fdSnapshot();
      const [tx, rx] = UnixStream.pair();
      const sent = Array.from({ length: 6 }, () => openRaw("/dev/null"));
      tx.sendFdsSync("b", sent);
      for (const n of sent) closeRaw(n);
      let released = -1;
      let numbers: number[] = [];
      await (async () => {
        const r = rx.recvFdsSync(6);
        numbers = r.fds.map((f) => f.fd);
        if (enrolled) await nextTurns();
        r.fds[1]!.close(); // closed on its own first
        released = r.fds[2]!.release(); // no longer ours
        r.fds[4]!.close();
        r[Symbol.dispose](); // closes 0, 3, 5; skips 1, 2, 4
        for (const f of r.fds) expect(f.closed).toBe(true);
        r[Symbol.dispose](); // idempotent
      })();
      expect(isOpen(released)).toBe(true);
      // Occupy every freed number with a sentinel: a second close of any of them would close a sentinel.
      const freed = numbers.filter((n) => n !== released);
      for (const n of freed) expect(isOpen(n)).toBe(false);
      const sentinels = freed.map(() => openRaw("/dev/zero"));
      expect([...sentinels].sort((a, b) => a - b)).toEqual([...freed].sort((a, b) => a - b));
      await gcUntil(() => false, 150); // collects the batch's objects (and runs the net, if it were wrong)
      for (const n of sentinels) expect(fdTarget(n)).toBe("/dev/zero");
      expect(fdTarget(released)).toBe("/dev/null");
      for (const n of sentinels) closeRaw(n);
      closeRaw(released);
      tx.close();
      rx.close();
      expectNoNewFds(baseline);
    });
  }

  test("a foreign object a caller put into the fds array gets its own close(); every OwnedFd after it is still closed", () => {
    const [tx, rx] = UnixStream.pair();
    const sent = [openRaw("/dev/null"), openRaw("/dev/null")];
    tx.sendFdsSync("f", sent);
    for (const n of sent) closeRaw(n);
    const r = rx.recvFdsSync(2);
    const owned = [...r.fds];
    let called = 0;
    (r.fds as unknown[]).splice(1, 0, { close: () => called++ }, 42);
    r[Symbol.dispose]();
    expect(called).toBe(1);
    for (const f of owned) expect(f.closed).toBe(true);
    tx.close();
    rx.close();
  });
});
