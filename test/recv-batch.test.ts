/**
 * recvFdsBatch: one await for every message already queued. What it must keep from recvFds — every fd
 * owned or closed, messages in order, nothing consumed by an abort — and what is new: the batch limit,
 * the stop at EOF, and an error on a later message deferred to the socket's next receive (neither the
 * messages already taken nor the error is lost). Every test counts the fds it created.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { readSync, writeSync } from "node:fs";
import { cmsgRecvmsg, SocketAncillary, UnixAncillaryError, UnixDatagram, UnixSeqpacket, UnixStream, type ReceivedFds } from "../src/index.ts";
import * as sys from "../src/sys.ts";
import { expectNoFdLeak, fdTarget } from "./helpers/fds.ts";

/** A pipe whose read end yields `tag` (one byte): fd identity that survives transfer. */
function taggedPipe(tag: number): { r: number; w: number } {
  const [r, w] = sys.pipe();
  writeSync(w, new Uint8Array([tag]));
  return { r, w };
}
function readTag(fd: number): number {
  const b = new Uint8Array(1);
  if (readSync(fd, b, 0, 1, null) !== 1) throw new Error(`no tag on fd ${fd}`);
  return b[0]!;
}
function closePipes(pipes: { r: number; w: number }[]): void {
  for (const p of pipes) {
    sys.closeFd(p.r);
    sys.closeFd(p.w);
  }
}
const text = (m: ReceivedFds) => new TextDecoder().decode(m.data);
function closeBatch(batch: ReceivedFds[]): void {
  for (const m of batch) for (const f of m.fds) f.close();
}
type Rejection = Error & { code: string; bytesRead?: number; data?: Uint8Array };
async function rejection(p: Promise<unknown>): Promise<Rejection> {
  try {
    await p;
  } catch (e) {
    return e as Rejection;
  }
  throw new Error("expected a rejection");
}

beforeAll(async () => {
  // Start the reactor once, so its two fds are part of every test's baseline.
  const [a, b] = UnixStream.pair();
  const p = b.recvFds(0);
  await Bun.sleep(5);
  a.sendFdsSync("w");
  await p;
  a.close();
  b.close();
});

describe("recvFdsBatch", () => {
  for (const [name, pair] of [
    ["UnixSeqpacket", () => UnixSeqpacket.pair()],
    ["UnixDatagram", () => UnixDatagram.pair()],
    ["UnixStream", () => UnixStream.pair()],
  ] as const) {
    test(`${name}: every queued message in order, each with its own fds (identity by pipe tag)`, async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = pair();
        const pipes = [1, 2, 3, 4, 5].map(taggedPipe);
        for (const [i, p] of pipes.entries()) a.sendFdsSync(`m${i}`, [p.r]);
        const batch = await b.recvFdsBatch(1);
        expect(batch.map(text)).toEqual(["m0", "m1", "m2", "m3", "m4"]);
        expect(batch.map((m) => readTag(m.fds[0]!.fd))).toEqual([1, 2, 3, 4, 5]);
        closeBatch(batch);
        for (const p of pipes) expect(fdTarget(p.r)).not.toBeNull(); // sent fds stay the caller's
        closePipes(pipes);
        a.close();
        b.close();
      });
    });
  }

  test("maxMessages bounds a batch; the rest stays queued for the next one", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixSeqpacket.pair();
      const p = taggedPipe(7);
      for (let i = 0; i < 10; i++) a.sendFdsSync(`${i}`, [p.r]);
      const sizes: number[] = [];
      const texts: string[] = [];
      while (texts.length < 10) {
        const batch = await b.recvFdsBatch(1, { maxMessages: 4 });
        sizes.push(batch.length);
        texts.push(...batch.map(text));
        closeBatch(batch);
      }
      expect(sizes).toEqual([4, 4, 2]);
      expect(texts).toEqual(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
      closePipes([p]);
      a.close();
      b.close();
    });
  });

  test("waits when nothing is queued, then takes everything that arrived", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixSeqpacket.pair();
      const p = taggedPipe(9);
      const pending = b.recvFdsBatch(1);
      await Bun.sleep(20); // really waiting on the reactor
      for (let i = 0; i < 3; i++) a.sendFdsSync(`${i}`, [p.r]); // all three before the wake is handled
      const batch = await pending;
      expect(batch.map(text)).toEqual(["0", "1", "2"]);
      closeBatch(batch);
      closePipes([p]);
      a.close();
      b.close();
    });
  });

  test("a stream's EOF ends the batch as its last element", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixStream.pair();
      const p = taggedPipe(3);
      a.sendFdsSync("x", [p.r]);
      a.sendFdsSync("y", [p.r]);
      a.shutdown("write");
      const batch = await b.recvFdsBatch(1);
      expect(batch.map(text)).toEqual(["x", "y", ""]);
      expect(batch.map((m) => m.fds.length)).toEqual([1, 1, 0]);
      closeBatch(batch);
      const again = await b.recvFdsBatch(1); // still EOF, one element
      expect(again.map(text)).toEqual([""]);
      closePipes([p]);
      a.close();
      b.close();
    });
  });

  test("surplus fds beyond maxFds are closed, per message", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixSeqpacket.pair();
      const p = taggedPipe(5);
      for (let i = 0; i < 4; i++) a.sendFdsSync("m", [p.r, p.r, p.r]);
      const batch = await b.recvFdsBatch(1);
      expect(batch.map((m) => m.fds.length)).toEqual([1, 1, 1, 1]);
      closeBatch(batch);
      closePipes([p]);
      a.close();
      b.close();
    });
  });

  for (const next of ["recvFds", "recvFdsSync", "recvFdsBatch", "recvFdsIntoSync"] as const) {
    test(`an error on a later message ends the batch; the next receive (${next}) throws it with that message's bytes, fds closed`, async () => {
      await expectNoFdLeak(async () => {
        const [a, b] = UnixDatagram.pair();
        const p = taggedPipe(4);
        a.sendFdsSync("ab", [p.r]);
        a.sendFdsSync("cd", [p.r]);
        a.sendFdsSync("too long for 4", [p.r]); // MSG_TRUNC with a 4-byte buffer
        a.sendFdsSync("ef", [p.r]);
        const batch = await b.recvFdsBatch(1, { bufferSize: 4 });
        expect(batch.map(text)).toEqual(["ab", "cd"]);
        closeBatch(batch);
        const call =
          next === "recvFds"
            ? () => b.recvFds(1)
            : next === "recvFdsBatch"
              ? () => b.recvFdsBatch(1)
              : next === "recvFdsSync"
                ? async () => b.recvFdsSync(1)
                : async () => b.recvFdsIntoSync(1, new Uint8Array(16));
        const e = await rejection(call());
        expect(e).toBeInstanceOf(UnixAncillaryError);
        expect(e.code).toBe("ERR_UA_DATAGRAM_TRUNCATED");
        expect(e.bytesRead).toBe(4);
        expect(new TextDecoder().decode(e.data)).toBe("too ");
        // thrown once: the receive after it gets the next message
        const after = await b.recvFds(1);
        expect(text(after)).toBe("ef");
        expect(readTag(after.fds[0]!.fd)).toBe(4);
        after.fds[0]!.close();
        closePipes([p]);
        a.close();
        b.close();
      });
    });
  }

  test("an error on the first message rejects the batch (fds closed)", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixDatagram.pair();
      const p = taggedPipe(2);
      a.sendFdsSync("much too long", [p.r]);
      const e = await rejection(b.recvFdsBatch(1, { bufferSize: 4 }));
      expect(e.code).toBe("ERR_UA_DATAGRAM_TRUNCATED");
      closePipes([p]);
      a.close();
      b.close();
    });
  });

  test("abort before anything arrives: ERR_UA_ABORTED and nothing consumed", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixSeqpacket.pair();
      const ac = new AbortController();
      const pending = b.recvFdsBatch(1, { signal: ac.signal });
      await Bun.sleep(10);
      ac.abort(new Error("stop"));
      expect((await rejection(pending)).code).toBe("ERR_UA_ABORTED");
      const p = taggedPipe(6);
      a.sendFdsSync("kept", [p.r]);
      const batch = await b.recvFdsBatch(1);
      expect(batch.map(text)).toEqual(["kept"]);
      closeBatch(batch);
      expect((await rejection(b.recvFdsBatch(1, { signal: AbortSignal.abort() }))).code).toBe("ERR_UA_ABORTED");
      closePipes([p]);
      a.close();
      b.close();
    });
  });

  test("close() while a batch waits: ERR_UA_CLOSED", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixSeqpacket.pair();
      const pending = b.recvFdsBatch(1);
      await Bun.sleep(10);
      b.close();
      expect((await rejection(pending)).code).toBe("ERR_UA_CLOSED");
      a.close();
    });
  });

  /** A datagram pair whose next batch (bufferSize 4) returns ["ab"] and defers a truncation error; "ef" follows. */
  async function withDeferredError(p: { r: number }): Promise<[UnixDatagram, UnixDatagram]> {
    const [a, b] = UnixDatagram.pair();
    a.sendFdsSync("ab", [p.r]);
    a.sendFdsSync("too long for 4", [p.r]);
    a.sendFdsSync("ef", [p.r]);
    const batch = await b.recvFdsBatch(1, { bufferSize: 4 });
    expect(batch.map(text)).toEqual(["ab"]);
    closeBatch(batch);
    return [a, b];
  }

  test("the low-level cmsgRecvmsg on the socket object throws the deferred error before reading on", async () => {
    await expectNoFdLeak(async () => {
      const p = taggedPipe(8);
      const [a, b] = await withDeferredError(p);
      using anc = new SocketAncillary(new Uint8Array(SocketAncillary.bufferSizeForRights(2)));
      const buf = new Uint8Array(16);
      let code = "";
      try {
        cmsgRecvmsg(b, [buf], anc);
      } catch (e) {
        code = (e as Rejection).code;
      }
      expect(code).toBe("ERR_UA_DATAGRAM_TRUNCATED");
      const r = cmsgRecvmsg(b, [buf], anc);
      expect(new TextDecoder().decode(buf.subarray(0, r.bytesRead))).toBe("ef");
      anc.clear();
      closePipes([p]);
      a.close();
      b.close();
    });
  });

  test("close() and intoFd() drop a deferred error: a closed socket says ERR_UA_CLOSED, a socket rebuilt from its fd reads on", async () => {
    await expectNoFdLeak(async () => {
      const p = taggedPipe(1);
      const [a, b] = await withDeferredError(p);
      b.close();
      let code = "";
      try {
        b.recvFdsSync(1);
      } catch (e) {
        code = (e as Rejection).code;
      }
      expect(code).toBe("ERR_UA_CLOSED");
      expect((await rejection(b.recvFdsBatch(1))).code).toBe("ERR_UA_CLOSED");
      a.close();

      const [c, d] = await withDeferredError(p);
      const rebuilt = UnixDatagram.fromFd(d.intoFd());
      expect((await rejection(d.recvFds(1))).code).toBe("ERR_UA_CLOSED");
      const m = rebuilt.recvFdsSync(1);
      expect(text(m)).toBe("ef");
      m.fds[0]!.close();
      closePipes([p]);
      c.close();
      rebuilt.close();
    });
  });

  test("options.bufferSize is read once: a getter cannot pass the check and then shrink the buffer", async () => {
    await expectNoFdLeak(async () => {
      const [a, b] = UnixStream.pair();
      a.sendFdsSync("helloworld");
      let reads = 0;
      const opts = {
        get bufferSize() {
          reads++;
          return reads === 1 ? 16 : 0;
        },
      };
      const batch = await b.recvFdsBatch(0, opts);
      expect(reads).toBe(1);
      expect(batch.map(text)).toEqual(["helloworld"]);
      a.close();
      b.close();
    });
  });

  test("bad arguments reject with Node-style errors before any syscall", async () => {
    const [a, b] = UnixSeqpacket.pair();
    a.sendFdsSync("still queued");
    for (const [opts, code] of [
      [{ maxMessages: 0 }, "ERR_OUT_OF_RANGE"],
      [{ maxMessages: 1.5 }, "ERR_OUT_OF_RANGE"],
      [{ maxMessages: 4097 }, "ERR_OUT_OF_RANGE"],
      [{ maxMessages: "4" }, "ERR_INVALID_ARG_TYPE"],
      [{ bufferSize: 0 }, "ERR_OUT_OF_RANGE"],
      [{ signal: "no" }, "ERR_INVALID_ARG_TYPE"],
      [42, "ERR_INVALID_ARG_TYPE"],
    ] as const) {
      expect({ opts, code: (await rejection(b.recvFdsBatch(1, opts as never))).code }).toEqual({ opts, code });
    }
    expect((await rejection(b.recvFdsBatch(-1))).code).toBe("ERR_OUT_OF_RANGE");
    const batch = await b.recvFdsBatch(0);
    expect(batch.map(text)).toEqual(["still queued"]);
    a.close();
    b.close();
  });
});
