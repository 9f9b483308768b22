/**
 * Reentrant user code inside a send: an `{ fd }` getter (or a socket subclass's `fd`) that itself sends
 * on another socket must not change which fds either message carries, nor where they go.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { cmsgRecvmsg, cmsgSendmsg, OwnedFd, SocketAncillary, UnixDatagram, UnixSeqpacket, UnixStream } from "../src/index.ts";
import { shutdownReactor } from "../src/async/reactor.ts";
import { fdTarget } from "./helpers/fds.ts";
import { closeRaw, pipeRaw } from "./fixtures/libc.ts";

afterAll(async () => {
  await shutdownReactor();
});

/** A pipe read end: its own inode, so /proc/self/fd tells it apart. The test closes it. */
function pipeEnd(): number {
  const [r, w] = pipeRaw();
  closeRaw(w);
  return r;
}

type Pair = [UnixStream, UnixStream] | [UnixDatagram, UnixDatagram] | [UnixSeqpacket, UnixSeqpacket];
const KINDS: [string, () => Pair][] = [
  ["UnixStream", () => UnixStream.pair()],
  ["UnixDatagram", () => UnixDatagram.pair()],
  ["UnixSeqpacket", () => UnixSeqpacket.pair()],
];

/** Receives one message with up to 4 fds and returns what each fd points at (closing them). */
function received(sock: UnixStream | UnixDatagram | UnixSeqpacket): { data: string; targets: (string | null)[] } {
  const r = sock.recvFdsSync(4);
  const targets = r.fds.map((f) => fdTarget(f.fd));
  r[Symbol.dispose]();
  return { data: new TextDecoder().decode(r.data), targets };
}

type SendCall = (s: UnixStream | UnixDatagram | UnixSeqpacket, fds: unknown[]) => unknown;
const SENDS: [string, SendCall][] = [
  ["sendFdsSync", (s, fds) => s.sendFdsSync("x", fds as number[])],
  ["sendFdsVectoredSync", (s, fds) => s.sendFdsVectoredSync(["x"], fds as number[])],
  ["sendFds (async)", (s, fds) => s.sendFds("x", fds as number[])],
  ["sendFdsVectored (async)", (s, fds) => s.sendFdsVectored(["x"], fds as number[])],
];

describe("a getter that sends on another socket does not change the outer message", () => {
  for (const [kind, make] of KINDS) {
    for (const [outerName, outer] of SENDS) {
      for (const [innerName, inner] of SENDS) {
        test(`${kind}: ${outerName} with a getter calling ${innerName}`, async () => {
          const [a1, a2] = make();
          const [b1, b2] = make();
          const pub = pipeEnd();
          const sec = pipeEnd();
          const pubT = fdTarget(pub);
          const secT = fdTarget(sec);
          try {
            let innerResult: unknown;
            const getter = {
              get fd() {
                innerResult = inner(b1, [sec]);
                return pub;
              },
            };
            await outer(a1, [pub, getter]);
            await innerResult;
            const got = received(a2);
            expect(got.targets).toEqual([pubT, pubT]);
            const gotB = received(b2);
            expect(gotB.targets).toEqual([secT]);
          } finally {
            closeRaw(pub);
            closeRaw(sec);
            for (const s of [a1, a2, b1, b2]) s.close();
          }
        });
      }
    }
  }

  test("sendFdsAllSync / sendFdsAll with a getter that sends a long payload on another stream", async () => {
    for (const asyncOuter of [false, true]) {
      const [a1, a2] = UnixStream.pair();
      const [b1, b2] = UnixStream.pair();
      const pub = pipeEnd();
      const sec = pipeEnd();
      try {
        const getter = {
          get fd() {
            b1.sendFdsAllSync("y".repeat(100), [sec]);
            return pub;
          },
        };
        const payload = "x".repeat(100);
        if (asyncOuter) await a1.sendFdsAll(payload, [getter, pub]);
        else a1.sendFdsAllSync(payload, [getter, pub]);
        const got = a2.recvFdsSync(4);
        expect(got.fds.map((f) => fdTarget(f.fd))).toEqual([fdTarget(pub), fdTarget(pub)]);
        expect(new TextDecoder().decode(got.data)).toBe(payload);
        got[Symbol.dispose]();
        const gotB = b2.recvFdsSync(4);
        expect(gotB.fds.map((f) => fdTarget(f.fd))).toEqual([fdTarget(sec)]);
        expect(new TextDecoder().decode(gotB.data)).toBe("y".repeat(100));
        gotB[Symbol.dispose]();
      } finally {
        closeRaw(pub);
        closeRaw(sec);
        for (const s of [a1, a2, b1, b2]) s.close();
      }
    }
  });

  test("a socket subclass whose fd getter sends on another socket", () => {
    class Noisy extends (UnixSeqpacket as unknown as { new (o: OwnedFd): UnixSeqpacket }) {
      hook: (() => void) | null = null;
      override get fd(): number {
        this.hook?.();
        return super.fd;
      }
    }
    const [x1, x2] = UnixSeqpacket.pair();
    const a1 = new Noisy(x1.intoFd());
    const [b1, b2] = UnixSeqpacket.pair();
    const pub = pipeEnd();
    const sec = pipeEnd();
    try {
      a1.hook = () => {
        a1.hook = null;
        b1.sendFdsSync("y", [sec, sec, sec]);
      };
      a1.sendFdsSync("x", [pub]);
      expect(received(x2).targets).toEqual([fdTarget(pub)]);
      expect(received(b2).targets).toEqual([fdTarget(sec), fdTarget(sec), fdTarget(sec)]);
    } finally {
      closeRaw(pub);
      closeRaw(sec);
      for (const s of [a1, x2, b1, b2]) s.close();
    }
  });

  test("cmsgSendmsg: a getter checked at send time that sends through another SocketAncillary", () => {
    const [a1, a2] = UnixSeqpacket.pair();
    const [b1, b2] = UnixSeqpacket.pair();
    const pub = pipeEnd();
    const sec = pipeEnd();
    try {
      const inner = new SocketAncillary(new Uint8Array(64));
      inner.addFds([sec]);
      const source = {
        get fd() {
          cmsgSendmsg(b1, ["y"], inner);
          return pub;
        },
      };
      const outer = new SocketAncillary(new Uint8Array(64));
      outer.addFds([source]); // runs the getter once (b1 sends), and again at send time
      expect(received(b2).targets).toEqual([fdTarget(sec)]);
      cmsgSendmsg(a1, ["x"], outer);
      expect(received(a2).targets).toEqual([fdTarget(pub)]);
      expect(received(b2).targets).toEqual([fdTarget(sec)]);
    } finally {
      closeRaw(pub);
      closeRaw(sec);
      for (const s of [a1, a2, b1, b2]) s.close();
    }
  });

  test("SocketAncillary.addFds: a getter that switches the buffer to receive mode makes addFds throw, writing nothing", () => {
    const [a1, a2] = UnixSeqpacket.pair();
    const pub = pipeEnd();
    try {
      const anc = new SocketAncillary(new Uint8Array(64));
      a1.sendFdsSync("z", []);
      const getter = {
        get fd() {
          cmsgRecvmsg(a2, [new Uint8Array(8)], anc);
          return pub;
        },
      };
      expect(() => anc.addFds([getter])).toThrow(expect.objectContaining({ code: "ERR_UA_BUFFER" }));
      expect(anc.receiveMode).toBe(true);
      anc.clear();
    } finally {
      closeRaw(pub);
      a1.close();
      a2.close();
    }
  });
});
