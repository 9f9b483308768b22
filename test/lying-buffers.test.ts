/**
 * Caller buffers that lie: Uint8Array / DataView subclasses (and own accessors on a plain Uint8Array)
 * whose byteLength, byteOffset, buffer or length getters answer something other than the view's real
 * extent. Every public function that takes a buffer must send exactly the view's real bytes, write only
 * into the view's real bytes, and never take a SocketAncillary's fds from memory the getters point at.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { cmsgRecvmsg, cmsgSendmsg, SocketAncillary, UnixDatagram, UnixSeqpacket, UnixStream } from "../src/index.ts";
import { shutdownReactor } from "../src/async/reactor.ts";
import { fdTarget } from "./helpers/fds.ts";
import { closeRaw, isOpen, pipeRaw } from "./fixtures/libc.ts";

afterAll(async () => {
  await shutdownReactor();
});

const SIZE = 64;
const VIEW = 8;
const A = 0x41; // the view's own bytes
const S = 0x53; // bytes outside the view: a lie would expose or overwrite them
const elsewhere = new ArrayBuffer(SIZE); // what a lying `buffer` getter points at
new Uint8Array(elsewhere).fill(0x45);

/** Liars over `ab` viewing bytes [VIEW, 2*VIEW): each lies about one property, pointing at the whole buffer. */
type Liar = { name: string; make: (ab: ArrayBuffer) => ArrayBufferView };
const LIARS: Liar[] = [
  {
    name: "Uint8Array subclass lying about byteLength",
    make: (ab) =>
      new (class extends Uint8Array {
        override get byteLength() {
          return SIZE;
        }
      })(ab, VIEW, VIEW),
  },
  {
    name: "Uint8Array subclass lying about byteOffset",
    make: (ab) =>
      new (class extends Uint8Array {
        override get byteOffset() {
          return 0;
        }
      })(ab, VIEW, VIEW),
  },
  {
    name: "Uint8Array subclass lying about length",
    make: (ab) =>
      new (class extends Uint8Array {
        override get length() {
          return SIZE;
        }
      })(ab, VIEW, VIEW),
  },
  {
    name: "Uint8Array subclass whose buffer getter points elsewhere",
    make: (ab) =>
      new (class extends Uint8Array {
        override get buffer() {
          return elsewhere;
        }
      })(ab, VIEW, VIEW),
  },
  {
    name: "Uint8Array subclass lying about all four",
    make: (ab) =>
      new (class extends Uint8Array {
        override get byteLength() {
          return SIZE;
        }
        override get byteOffset() {
          return 0;
        }
        override get length() {
          return SIZE;
        }
        override get buffer() {
          return elsewhere;
        }
      })(ab, VIEW, VIEW),
  },
  {
    name: "plain Uint8Array with own byteLength/byteOffset accessors",
    make: (ab) => {
      const v = new Uint8Array(ab, VIEW, VIEW);
      Object.defineProperty(v, "byteLength", { get: () => SIZE });
      Object.defineProperty(v, "byteOffset", { get: () => 0 });
      Object.defineProperty(v, "length", { get: () => SIZE });
      return v;
    },
  },
  {
    name: "Int32Array subclass lying about byteLength and byteOffset",
    make: (ab) =>
      new (class extends Int32Array {
        override get byteLength() {
          return SIZE;
        }
        override get byteOffset() {
          return 0;
        }
      })(ab, VIEW, VIEW / 4),
  },
  {
    name: "DataView subclass lying about byteLength, byteOffset and buffer",
    make: (ab) =>
      new (class extends (DataView as new (b: ArrayBuffer, o: number, l: number) => DataView) {
        override get byteLength() {
          return SIZE;
        }
        override get byteOffset() {
          return 0;
        }
        override get buffer() {
          return elsewhere;
        }
      })(ab, VIEW, VIEW),
  },
];

/** An ArrayBuffer whose bytes [VIEW, 2*VIEW) are A and the rest S. */
function sourceBuffer(): ArrayBuffer {
  const ab = new ArrayBuffer(SIZE);
  const u = new Uint8Array(ab);
  u.fill(S);
  u.fill(A, VIEW, 2 * VIEW);
  return ab;
}

const expectedSent = "A".repeat(VIEW);

type AnyPair = [UnixStream, UnixStream] | [UnixSeqpacket, UnixSeqpacket] | [UnixDatagram, UnixDatagram];

/** Every public send taking a buffer: each sends `view` (alone, or as one of its buffers) with no fds. */
const SENDS: [string, (s: UnixStream, view: ArrayBufferView) => unknown][] = [
  ["sendFdsSync", (s, v) => s.sendFdsSync(v)],
  ["sendFdsVectoredSync", (s, v) => s.sendFdsVectoredSync([v])],
  ["sendFdsAllSync", (s, v) => s.sendFdsAllSync(v)],
  ["sendFds", (s, v) => s.sendFds(v)],
  ["sendFdsVectored", (s, v) => s.sendFdsVectored([v])],
  ["sendFdsAll", (s, v) => s.sendFdsAll(v)],
  ["cmsgSendmsg", (s, v) => cmsgSendmsg(s, [v], new SocketAncillary(new Uint8Array(0)))],
];

/** Every public receive taking a buffer: each receives into `view` (alone, or as its only buffer). */
const RECEIVES: [string, (s: UnixStream, view: ArrayBufferView) => unknown][] = [
  ["recvFdsIntoSync", (s, v) => s.recvFdsIntoSync(0, v)],
  ["recvFdsExactIntoSync", (s, v) => s.recvFdsExactIntoSync(0, v)],
  ["recvFdsVectoredSync", (s, v) => s.recvFdsVectoredSync(0, [v])],
  ["recvFdsInto", (s, v) => s.recvFdsInto(0, v)],
  ["recvFdsExactInto", (s, v) => s.recvFdsExactInto(0, v)],
  ["recvFdsVectored", (s, v) => s.recvFdsVectored(0, [v])],
  ["cmsgRecvmsg", (s, v) => cmsgRecvmsg(s, [v], new SocketAncillary(new Uint8Array(0)))],
];

describe("sends: exactly the view's real bytes reach the kernel", () => {
  for (const liar of LIARS) {
    for (const [name, send] of SENDS) {
      test(`${name}: ${liar.name}`, async () => {
        const [a, b] = UnixStream.pair();
        try {
          await send(a, liar.make(sourceBuffer()));
          a.shutdown("write");
          let got = "";
          for (;;) {
            const r = b.recvFdsSync(0);
            if (r.data.byteLength === 0) break;
            got += new TextDecoder().decode(r.data);
          }
          expect(got).toBe(expectedSent);
        } finally {
          a.close();
          b.close();
        }
      });
    }
  }
});

describe("receives: the kernel writes only into the view's real bytes", () => {
  for (const liar of LIARS) {
    for (const [name, receive] of RECEIVES) {
      test(`${name}: ${liar.name}`, async () => {
        const [a, b] = UnixStream.pair();
        try {
          a.sendFdsSync(new Uint8Array(SIZE).fill(0x52)); // 64 bytes of 'R'
          const ab = sourceBuffer();
          const r = (await receive(b, liar.make(ab))) as { bytesRead: number };
          expect(r.bytesRead).toBe(VIEW);
          const u = new Uint8Array(ab);
          expect(Array.from(u.subarray(0, VIEW)).every((x) => x === S)).toBe(true);
          expect(Array.from(u.subarray(VIEW, 2 * VIEW)).every((x) => x === 0x52)).toBe(true);
          expect(Array.from(u.subarray(2 * VIEW)).every((x) => x === S)).toBe(true);
          expect(Array.from(new Uint8Array(elsewhere)).every((x) => x === 0x45)).toBe(true);
        } finally {
          a.close();
          b.close();
        }
      });
    }
  }
});

describe("datagram receives into a lying view report truncation instead of writing past it", () => {
  for (const liar of LIARS.slice(0, 2)) {
    test(`recvFdsIntoSync on a seqpacket: ${liar.name}`, () => {
      const [a, b] = UnixSeqpacket.pair() as AnyPair;
      try {
        a.sendFdsSync(new Uint8Array(SIZE).fill(0x52));
        const ab = sourceBuffer();
        expect(() => b.recvFdsIntoSync(0, liar.make(ab))).toThrow(expect.objectContaining({ code: "ERR_UA_DATAGRAM_TRUNCATED" }));
        const u = new Uint8Array(ab);
        expect(Array.from(u.subarray(2 * VIEW)).every((x) => x === S)).toBe(true);
        expect(Array.from(u.subarray(0, VIEW)).every((x) => x === S)).toBe(true);
      } finally {
        a.close();
        b.close();
      }
    });
  }
});

/** A pipe read end: its own inode, so /proc/self/fd tells it apart. */
function pipeEnd(): number {
  const [r, w] = pipeRaw();
  closeRaw(w);
  return r;
}

describe("SocketAncillary over a lying Uint8Array", () => {
  test("a buffer getter pointing at forged control bytes: the fd the kernel delivered is adopted, the caller's fd is not", () => {
    const [a, b] = UnixSeqpacket.pair();
    const mine = pipeEnd(); // the caller's fd, named in the forged bytes
    const sent = pipeEnd();
    try {
      // Forged control data: an SCM_RIGHTS message naming `mine`, built by a real SocketAncillary.
      const forged = new Uint8Array(SocketAncillary.bufferSizeForRights(1));
      new SocketAncillary(forged).addFds([mine]);
      const real = new ArrayBuffer(forged.byteLength);
      class Lying extends Uint8Array {
        override get buffer() {
          return forged.buffer;
        }
      }
      const anc = new SocketAncillary(new Lying(real));
      a.sendFdsSync("x", [sent]);
      cmsgRecvmsg(b, [new Uint8Array(8)], anc);
      const got: string[] = [];
      for (const m of anc.messages()) {
        if (m.type === "rights") for (const fd of m.fds) using_(fd, (n) => got.push(fdTarget(n)!));
      }
      expect(got).toEqual([fdTarget(sent)!]);
      anc.clear();
      expect(isOpen(mine)).toBe(true);
    } finally {
      closeRaw(mine);
      closeRaw(sent);
      a.close();
      b.close();
    }
  });

  test("a byteLength lie does not let the kernel write control data past the view", () => {
    const [a, b] = UnixSeqpacket.pair();
    const sent = pipeEnd();
    try {
      const ab = new ArrayBuffer(256);
      const u = new Uint8Array(ab).fill(S);
      class Lying extends Uint8Array {
        override get byteLength() {
          return 256;
        }
        override get length() {
          return 256;
        }
      }
      const anc = new SocketAncillary(new Lying(ab, 0, 8)); // too small for any cmsg
      a.sendFdsSync("x", [sent, sent, sent]);
      const r = cmsgRecvmsg(b, [new Uint8Array(8)], anc);
      expect(r.truncated).toBe(true);
      expect(anc.length).toBe(0);
      expect(Array.from(u.subarray(8)).every((x) => x === S)).toBe(true);
      expect([...anc.messages()]).toEqual([]);
    } finally {
      closeRaw(sent);
      a.close();
      b.close();
    }
  });

  test("a view over a SharedArrayBuffer is refused even when its buffer getter returns an ArrayBuffer", () => {
    class Hiding extends Uint8Array {
      override get buffer() {
        return new ArrayBuffer(64);
      }
    }
    expect(() => new SocketAncillary(new Hiding(new SharedArrayBuffer(64) as unknown as ArrayBuffer))).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARG_VALUE" }));
  });

  // Under qemu-user (the arm64 CI runs) creating a resizable ArrayBuffer aborts Bun itself (JSC cannot
  // reserve its pages there), so this case runs natively only.
  test.skipIf(process.env.UA_EMULATED === "1")("a view over a resizable ArrayBuffer is refused even when its buffer getter returns a fixed one (skipped under qemu-user: JSC cannot reserve resizable buffers there)", () => {
    class Hiding extends Uint8Array {
      override get buffer() {
        return new ArrayBuffer(64);
      }
    }
    const resizable = new (ArrayBuffer as unknown as { new (n: number, o: { maxByteLength: number }): ArrayBuffer })(64, { maxByteLength: 128 });
    expect(() => new SocketAncillary(new Hiding(resizable, 0, 64))).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARG_VALUE" }));
  });

  test("addFds and cmsgSendmsg over a lying view send exactly the encoded bytes", () => {
    const [a, b] = UnixSeqpacket.pair();
    const sent = pipeEnd();
    try {
      const ab = new ArrayBuffer(128);
      class Lying extends Uint8Array {
        override get byteOffset() {
          return 64;
        }
        override get byteLength() {
          return 8;
        }
      }
      const anc = new SocketAncillary(new Lying(ab, 0, SocketAncillary.bufferSizeForRights(1)));
      anc.addFds([sent]);
      cmsgSendmsg(a, ["x"], anc);
      const r = b.recvFdsSync(2);
      expect(r.fds.map((f) => fdTarget(f.fd))).toEqual([fdTarget(sent)]);
      r[Symbol.dispose]();
    } finally {
      closeRaw(sent);
      a.close();
      b.close();
    }
  });

  test("the buffer getter returns the caller's own object", () => {
    class Sub extends Uint8Array {}
    const v = new Sub(16);
    expect(new SocketAncillary(v).buffer).toBe(v);
  });
});

function using_<T extends { fd: number; close(): void }>(fd: T, f: (n: number) => void): void {
  try {
    f(fd.fd);
  } finally {
    fd.close();
  }
}
