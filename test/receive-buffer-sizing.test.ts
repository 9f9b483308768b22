/**
 * The high-level receive's control buffer has room for a full batch of fds plus one message of every
 * kind a socket option makes the kernel attach (the registry's attachedBy kinds): a 253-fd message to a
 * receiver with SO_PASSCRED and SO_TIMESTAMP(NS) on is delivered whole, on every socket type.
 */
import { expect, test } from "bun:test";
import { fstatSync, openSync, closeSync } from "node:fs";
import { setPassCred, UnixDatagram, UnixSeqpacket, UnixStream } from "../src/index.ts";
import { abi, K } from "../src/platform/index.ts";
import { setsockoptInt } from "../src/sys.ts";

const MAX = abi.maxFdsPerSend; // 253 (252 on musl: its sendmsg caps control data)

const kinds = [
  ["stream", () => UnixStream.pair()],
  ["datagram", () => UnixDatagram.pair()],
  ["seqpacket", () => UnixSeqpacket.pair()],
] as const;

/** qemu-user refuses the options it does not translate (ENOPROTOOPT): those cases skip, as their names say. */
function optionWorks(option: number): boolean {
  const [a, b] = UnixDatagram.pair();
  try {
    setsockoptInt(b.fd, K.SOL_SOCKET, option, 1);
    return true;
  } catch {
    return false;
  } finally {
    a.close();
    b.close();
  }
}

for (const [name, pair] of kinds) {
  for (const ts of ["SO_TIMESTAMP", "SO_TIMESTAMPNS", "SO_TIMESTAMP_NEW"] as const) {
    const works = K[ts] >= 0 && optionWorks(K[ts]);
    test.skipIf(!works)(`${name}: ${MAX} fds with SO_PASSCRED + ${ts} on arrive whole (recvFdsSync, recvFdsIntoSync, recvFdsVectoredSync, recvFdsExactSync)${works ? "" : ` (skipped: ${ts} is refused here, e.g. by qemu-user)`}`, () => {
      const [a, b] = pair();
      const file = openSync("/dev/null", "r");
      const ino = fstatSync(file).ino;
      try {
        setPassCred(b, true);
        setsockoptInt(b.fd, K.SOL_SOCKET, K[ts], 1);
        const sent = new Array<number>(MAX).fill(file);
        const receives = [
          () => b.recvFdsSync(MAX).fds,
          () => b.recvFdsIntoSync(MAX, new Uint8Array(8)).fds,
          () => b.recvFdsVectoredSync(MAX, [new Uint8Array(1), new Uint8Array(7)]).fds,
          () => b.recvFdsExactSync(MAX).fds,
        ];
        for (const receive of receives) {
          a.sendFdsSync("x", sent);
          const fds = receive();
          expect(fds.length).toBe(MAX);
          for (const fd of fds) expect(fstatSync(fd.fd).ino).toBe(ino);
          for (const fd of fds) fd.close();
        }
      } finally {
        closeSync(file);
        a.close();
        b.close();
      }
    });
  }
}
