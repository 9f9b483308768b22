/**
 * Port of the crate's tests/fd_passing.rs (the Rust crate's test suite: cases 1–9 and 11–17; case 10, SIGPIPE,
 * lives in sigpipe.test.ts), plus seqpacket, abstract-namespace and filesystem listeners, stream EOF
 * and use-after-close. Cases 11 and 12 run the sender in a child Bun process (the socket end is its
 * fd 3) because a blocking 128 KiB send and its receiver cannot share one JS thread.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, existsSync, mkdtempSync, openSync, readlinkSync, readSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  cmsgRecvmsg,
  cmsgSendmsg,
  type ErrorKind,
  type UnixAncillaryErrorCode,
  MESSAGES,
  OwnedFd,
  SocketAncillary,
  SystemError,
  UnixAncillaryError,
  UnixDatagram,
  UnixListener,
  UnixSeqpacket,
  UnixSeqpacketListener,
  UnixStream,
} from "../src/index.ts";
import { fdSnapshot, expectNoNewFds } from "./helpers/fds.ts";
import { getFdFlags, isOpenFd, signalMainThread, SIGWINCH, waitReadable } from "./fixtures/child-libc.ts";

const decoder = new TextDecoder();
const text = (b: Uint8Array) => decoder.decode(b);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ua-fdpass-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let seq = 0;
/** A temp file with `contents`, opened read-write; the caller closes the returned fd. */
function tempFile(contents: string): { fd: number; path: string } {
  const path = join(dir, `f${seq++}`);
  writeFileSync(path, contents);
  return { fd: openSync(path, "r+"), path };
}

/** Reads the whole file through `fd` from offset 0 (pread: does not move the shared offset). */
function readAllAt0(fd: number): string {
  const buf = new Uint8Array(4096);
  const n = readSync(fd, buf, 0, buf.length, 0);
  return text(buf.subarray(0, n));
}

function expectUaError(f: () => unknown, code: UnixAncillaryErrorCode, kind: ErrorKind): UnixAncillaryError {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(UnixAncillaryError);
  const e = caught as UnixAncillaryError;
  expect(e.code).toBe(code);
  expect(e.kind).toBe(kind);
  return e;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

const CHILD_SEND_ALL = join(import.meta.dir, "fixtures", "child-send-all.ts");

describe("fd_passing", () => {
  test("1. send_recv_single_fd: data and one fd; the fd shares the open file description", () => {
    const [tx, rx] = UnixStream.pair();
    using _tx = tx;
    using _rx = rx;
    const f = tempFile("hello from fd");
    try {
      expect(tx.sendFdsSync("msg", [f.fd])).toBe(3);
      using r = rx.recvFdsSync(1);
      expect(text(r.data)).toBe("msg");
      expect(r.fds).toHaveLength(1);
      const got = r.fds[0]!.fd;
      expect(got).not.toBe(f.fd);
      expect(readAllAt0(got)).toBe("hello from fd");
      // Same open file description, not just the same file: the offset is shared.
      const five = new Uint8Array(5);
      expect(readSync(f.fd, five, 0, 5, null)).toBe(5);
      const rest = new Uint8Array(64);
      const n = readSync(got, rest, 0, 64, null);
      expect(text(rest.subarray(0, n))).toBe(" from fd");
    } finally {
      closeSync(f.fd);
    }
  });

  test("2. send_recv_multiple_fds: three fds arrive in order", () => {
    const [tx, rx] = UnixStream.pair();
    using _tx = tx;
    using _rx = rx;
    const files = [tempFile("a"), tempFile("b"), tempFile("c")];
    try {
      // The three FdLike shapes: a number, an OwnedFd, an object with a numeric fd.
      using owned = OwnedFd.from(files[1]!.fd);
      const sendList = [files[0]!.fd, owned, { fd: files[2]!.fd }];
      expect(tx.sendFdsSync("multi", sendList)).toBe(5);
      expect(owned.closed).toBe(false); // the sender keeps what it sends
      using r = rx.recvFdsSync(3);
      expect(text(r.data)).toBe("multi");
      expect(r.fds).toHaveLength(3);
      expect(r.fds.map((fd) => readlinkSync(`/proc/self/fd/${fd.fd}`))).toEqual(files.map((f) => f.path));
      expect(r.fds.map((fd) => readAllAt0(fd.fd))).toEqual(["a", "b", "c"]);
      files[1]!.fd = -1; // closed by `owned`
    } finally {
      for (const f of files) if (f.fd >= 0) closeSync(f.fd);
    }
  });

  test("3. owned_fd_closes_on_drop: disposing the result closes the received number", () => {
    const [tx, rx] = UnixStream.pair();
    using _tx = tx;
    using _rx = rx;
    const f = tempFile("x");
    let number: number;
    try {
      tx.sendFdsSync("x", [f.fd]);
      {
        using r = rx.recvFdsSync(1);
        number = r.fds[0]!.fd;
        expect(getFdFlags(number)).toBeGreaterThanOrEqual(0);
      }
      expect(getFdFlags(number)).toBe(-1);
      expect(isOpenFd(f.fd)).toBe(true); // the sender's copy is untouched
    } finally {
      closeSync(f.fd);
    }
  });

  test("4. recv_fds_into_with_user_buffer", () => {
    const [tx, rx] = UnixStream.pair();
    using _tx = tx;
    using _rx = rx;
    const f = tempFile("y");
    try {
      tx.sendFdsSync("into", [f.fd]);
      const buf = new Uint8Array(16);
      using r = rx.recvFdsIntoSync(1, buf);
      expect(r.bytesRead).toBe(4);
      expect(text(buf.subarray(0, r.bytesRead))).toBe("into");
      expect(r.fds).toHaveLength(1);
      expect(readAllAt0(r.fds[0]!.fd)).toBe("y");
    } finally {
      closeSync(f.fd);
    }
  });

  test("5. low_level_api: SocketAncillary + cmsgSendmsg / cmsgRecvmsg", () => {
    const [tx, rx] = UnixStream.pair();
    using _tx = tx;
    using _rx = rx;
    const f = tempFile("low");
    try {
      using send = new SocketAncillary(new Uint8Array(64));
      send.addFds([f.fd]);
      expect(cmsgSendmsg(tx, ["low-level"], send)).toBe(9);

      const data = new Uint8Array(64);
      using recv = new SocketAncillary(new Uint8Array(64));
      const res = cmsgRecvmsg(rx, [data], recv);
      expect(text(data.subarray(0, res.bytesRead))).toBe("low-level");
      expect(res.truncated).toBe(false);
      let count = 0;
      for (const msg of recv.messages()) {
        switch (msg.type) {
          case "rights":
            for (const fd of msg.fds) {
              expect(readAllAt0(fd.fd)).toBe("low");
              fd.close();
              count++;
            }
            break;
          default:
            break;
        }
      }
      expect(count).toBe(1);
    } finally {
      closeSync(f.fd);
    }
  });

  test("6. buffer_size_calculation", () => {
    const one = SocketAncillary.bufferSizeForRights(1);
    const four = SocketAncillary.bufferSizeForRights(4);
    expect(one).toBeGreaterThan(0);
    expect(four).toBeGreaterThan(one);
    if (process.platform === "linux") {
      // CMSG_SPACE(4) and CMSG_SPACE(16) with a 16-byte header and 8-byte alignment.
      expect(one).toBe(24);
      expect(four).toBe(32);
    }
  });

  test("7. ancillary_buffer_too_small: addFds into a 1-byte buffer throws", () => {
    const f = tempFile("z");
    try {
      const bytes = new Uint8Array(1);
      using anc = new SocketAncillary(bytes);
      const e = expectUaError(() => anc.addFds([f.fd]), "ERR_UA_BUFFER", "InvalidInput");
      expect(e.message).toBe(MESSAGES.ancillaryBuffer);
      expect(anc.length).toBe(0);
      expect(bytes[0]).toBe(0); // nothing written
    } finally {
      closeSync(f.fd);
    }
  });

  test("8. stream_rejects_fds_without_payload_byte (and nothing is sent)", () => {
    const [tx, rx] = UnixStream.pair();
    using _tx = tx;
    using _rx = rx;
    const f = tempFile("z");
    try {
      const e = expectUaError(() => tx.sendFdsSync("", [f.fd]), "ERR_UA_EMPTY_PAYLOAD", "InvalidInput");
      expect(e.message).toBe(MESSAGES.emptyStreamPayload);
      expectUaError(() => tx.sendFdsSync(new Uint8Array(0), [f.fd]), "ERR_UA_EMPTY_PAYLOAD", "InvalidInput");
      // The socket stays usable and no fd slipped through.
      tx.sendFdsSync("k");
      using r = rx.recvFdsSync(4);
      expect(text(r.data)).toBe("k");
      expect(r.fds).toHaveLength(0);
    } finally {
      closeSync(f.fd);
    }
  });

  test("9. stream_allows_empty_payload_without_fds", () => {
    const [tx, rx] = UnixStream.pair();
    using _tx = tx;
    using _rx = rx;
    expect(tx.sendFdsSync("", [])).toBe(0);
    expect(tx.sendFdsSync(new Uint8Array(0))).toBe(0);
  });

  interface SendChildResult {
    bytes: Uint8Array;
    fds: OwnedFd[];
    child: { sndbuf: number; signals: number; sent?: number };
  }

  /**
   * Runs child-send-all.ts with the other end of a stream pair as its fd 3 and `receive` on ours. With
   * `interrupt`, waits until the child's first sendmsg has put data in flight (the child is then stuck in
   * that call: nobody drains), and signals the child's main thread so the call returns a partial count.
   */
  async function runSendChild(
    opts: { size: number; sndbuf: number; method: "all" | "single"; interrupt: boolean },
    receive: (rx: UnixStream) => { bytes: Uint8Array; fds: OwnedFd[] },
  ): Promise<SendChildResult> {
    const f = tempFile("payload file");
    closeSync(f.fd);
    const [rx, childEnd] = UnixStream.pair();
    using _rx = rx;
    const proc = Bun.spawn([process.execPath, CHILD_SEND_ALL, f.path, String(opts.size), String(opts.sndbuf), opts.method], {
      stdio: ["ignore", "pipe", "pipe", childEnd.fd],
    });
    childEnd.close(); // the child holds the only other copy: its exit means EOF here, never a hang
    let got: { bytes: Uint8Array; fds: OwnedFd[] };
    try {
      if (opts.interrupt) {
        expect(waitReadable(rx.fd, 20_000)).toBe(true);
        Bun.sleepSync(50);
        signalMainThread(proc.pid, SIGWINCH);
        Bun.sleepSync(50);
      }
      got = receive(rx);
    } catch (e) {
      proc.kill();
      await proc.exited;
      throw e;
    }
    const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    expect({ code, signal: proc.signalCode, err }).toEqual({ code: 0, signal: null, err: "" });
    return { ...got, child: JSON.parse(out.trim()) };
  }

  /** Drains with recvmsg only (recvFdsSync(8), then recvFdsIntoSync(8) with 8 KiB) until EOF. */
  function drainWithRecvmsg(rx: UnixStream): { bytes: Uint8Array; fds: OwnedFd[] } {
    const fds: OwnedFd[] = [];
    const first = rx.recvFdsSync(8);
    fds.push(...first.fds);
    const chunks = [first.data];
    const buf = new Uint8Array(8 * 1024);
    if (first.data.length > 0) {
      for (;;) {
        const r = rx.recvFdsIntoSync(8, buf); // never read(2): it would silently discard fds
        fds.push(...r.fds);
        if (r.bytesRead === 0) break;
        chunks.push(buf.slice(0, r.bytesRead));
      }
    }
    return { bytes: concat(chunks), fds };
  }

  test("11. send_fds_all_transfers_payload_and_descriptor (sender in a child process)", async () => {
    const SIZE = 128 * 1024;
    const res = await runSendChild({ size: SIZE, sndbuf: 0, method: "all", interrupt: false }, (rx) => {
      const first = rx.recvFdsSync(1);
      expect(first.data.length).toBeGreaterThan(0);
      const chunks = [first.data];
      const buf = new Uint8Array(16 * 1024);
      for (;;) {
        const n = readSync(rx.fd, buf); // plain read(2) for the rest, like the crate
        if (n === 0) break;
        chunks.push(buf.slice(0, n));
      }
      return { bytes: concat(chunks), fds: first.fds };
    });
    try {
      expect(res.bytes.length).toBe(SIZE);
      expect(res.bytes.every((b) => b === 0x78)).toBe(true);
      expect(res.fds).toHaveLength(1);
      expect(readAllAt0(res.fds[0]!.fd)).toBe("payload file");
    } finally {
      for (const fd of res.fds) fd.close();
    }
  });

  test("12 (precondition). with SO_SNDBUF 2048, a signal makes one blocked sendmsg return a partial count", async () => {
    const SIZE = 128 * 1024;
    const res = await runSendChild({ size: SIZE, sndbuf: 2048, method: "single", interrupt: true }, drainWithRecvmsg);
    try {
      expect(res.child.signals).toBe(1);
      expect(res.child.sent).toBeGreaterThan(0);
      expect(res.child.sent).toBeLessThan(SIZE);
      expect(res.bytes.length).toBe(res.child.sent!);
      expect(res.fds).toHaveLength(1);
    } finally {
      for (const fd of res.fds) fd.close();
    }
  });

  test("12. partial_first_send_delivers_exactly_one_descriptor (SO_SNDBUF 2048, interrupted first sendmsg, recvmsg-only drain)", async () => {
    const SIZE = 128 * 1024;
    const res = await runSendChild({ size: SIZE, sndbuf: 2048, method: "all", interrupt: true }, drainWithRecvmsg);
    try {
      // The shrunken buffer really was far smaller than the payload (Linux doubles the value, min 4608),
      // and the signal landed, so sendFdsAllSync had to finish in its tail loop.
      expect(res.child.sndbuf).toBeLessThanOrEqual(8192);
      expect(res.child.signals).toBe(1);
      expect(res.bytes.length).toBe(SIZE);
      expect(res.bytes.every((b) => b === 0x78)).toBe(true);
      expect(res.fds).toHaveLength(1);
      expect(readAllAt0(res.fds[0]!.fd)).toBe("payload file");
    } finally {
      for (const fd of res.fds) fd.close();
    }
  });

  test("13. datagram_payload_truncation_is_an_error (fds of the failed receive are closed)", () => {
    const [tx, rx] = UnixDatagram.pair();
    using _tx = tx;
    using _rx = rx;
    const f = tempFile("t");
    try {
      const payload = "abcdefghijklmnopqrstuvwxyz";
      expect(tx.sendFdsSync(payload, [f.fd])).toBe(26);
      const before = fdSnapshot();
      const e = expectUaError(() => rx.recvFdsIntoSync(0, new Uint8Array(4)), "ERR_UA_DATAGRAM_TRUNCATED", "InvalidData");
      expect(e.message).toBe(MESSAGES.datagramTruncated);
      expectNoNewFds(before);
      // Same with a larger maxFds: the delivered fd is still closed, not handed out.
      tx.sendFdsSync(payload, [f.fd]);
      expectUaError(() => rx.recvFdsIntoSync(4, new Uint8Array(4)), "ERR_UA_DATAGRAM_TRUNCATED", "InvalidData");
      expectNoNewFds(before);
    } finally {
      closeSync(f.fd);
    }
  });

  test("14. recv_exact_accepts_exact_count", () => {
    const [tx, rx] = UnixStream.pair();
    using _tx = tx;
    using _rx = rx;
    const a = tempFile("1");
    const b = tempFile("2");
    try {
      tx.sendFdsSync("two", [a.fd, b.fd]);
      using r = rx.recvFdsExactSync(2);
      expect(text(r.data)).toBe("two");
      expect(r.fds.map((fd) => readAllAt0(fd.fd))).toEqual(["1", "2"]);
    } finally {
      closeSync(a.fd);
      closeSync(b.fd);
    }
  });

  test("15. recv_exact_rejects_too_few (and closes what arrived)", () => {
    const [tx, rx] = UnixStream.pair();
    using _tx = tx;
    using _rx = rx;
    const a = tempFile("1");
    try {
      tx.sendFdsSync("one", [a.fd]);
      const before = fdSnapshot();
      const e = expectUaError(() => rx.recvFdsExactSync(2), "ERR_UA_FD_COUNT_MISMATCH", "InvalidData");
      expect(e.message).toBe(MESSAGES.exactCount(2, 1));
      expectNoNewFds(before);
    } finally {
      closeSync(a.fd);
    }
  });

  test("16. recv_exact_rejects_too_many (and closes all three)", () => {
    const [tx, rx] = UnixStream.pair();
    using _tx = tx;
    using _rx = rx;
    const fs = [tempFile("1"), tempFile("2"), tempFile("3")];
    try {
      tx.sendFdsSync("three", fs.map((f) => f.fd));
      const before = fdSnapshot();
      const e = expectUaError(() => rx.recvFdsExactSync(2), "ERR_UA_FD_COUNT_MISMATCH", "InvalidData");
      expect(e.message).toBe(MESSAGES.exactCount(2, 3));
      expectNoNewFds(before);
    } finally {
      for (const f of fs) closeSync(f.fd);
    }
  });

  test("17. recv_exact_datagram_accepts_exact_count", () => {
    const [tx, rx] = UnixDatagram.pair();
    using _tx = tx;
    using _rx = rx;
    const a = tempFile("1");
    const b = tempFile("2");
    try {
      expect(tx.sendFdsSync("dg", [a.fd, b.fd])).toBe(2);
      using r = rx.recvFdsExactSync(2);
      expect(text(r.data)).toBe("dg");
      expect(r.fds).toHaveLength(2);
      expect(r.fds.map((fd) => readAllAt0(fd.fd))).toEqual(["1", "2"]);
    } finally {
      closeSync(a.fd);
      closeSync(b.fd);
    }
  });
});

describe("socket kinds and addresses", () => {
  test("seqpacket pair: fds travel and message boundaries hold", () => {
    const [tx, rx] = UnixSeqpacket.pair();
    using _tx = tx;
    using _rx = rx;
    const a = tempFile("sp-a");
    const b = tempFile("sp-b");
    try {
      expect(tx.sendFdsSync("first", [a.fd])).toBe(5);
      expect(tx.sendFdsSync("second", [b.fd])).toBe(6);
      expect(tx.sendFdsSync("", [a.fd])).toBe(0); // message sockets allow an empty payload with fds
      {
        using r1 = rx.recvFdsSync(4);
        expect(text(r1.data)).toBe("first");
        expect(r1.fds.map((fd) => readAllAt0(fd.fd))).toEqual(["sp-a"]);
      }
      {
        using r2 = rx.recvFdsSync(4);
        expect(text(r2.data)).toBe("second");
        expect(r2.fds.map((fd) => readAllAt0(fd.fd))).toEqual(["sp-b"]);
      }
      {
        using r3 = rx.recvFdsExactSync(1);
        expect(r3.data.length).toBe(0);
        expect(readAllAt0(r3.fds[0]!.fd)).toBe("sp-a");
      }
    } finally {
      closeSync(a.fd);
      closeSync(b.fd);
    }
  });

  test("seqpacket truncation is an error like a datagram's", () => {
    const [tx, rx] = UnixSeqpacket.pair();
    using _tx = tx;
    using _rx = rx;
    tx.sendFdsSync("0123456789", [0]);
    const before = fdSnapshot();
    expectUaError(() => rx.recvFdsIntoSync(1, new Uint8Array(3)), "ERR_UA_DATAGRAM_TRUNCATED", "InvalidData");
    expectNoNewFds(before);
  });

  test("abstract-namespace listener: connect, accept, pass an fd; the name is freed on close", () => {
    const name = `\0unix-ancillary-test-${process.pid}-${Math.random().toString(36).slice(2)}`;
    using listener = UnixListener.bindSync(name);
    expect(listener.path).toBe(name);
    using client = UnixStream.connectSync(name);
    using server = listener.acceptSync();
    const f = tempFile("abstract");
    try {
      client.sendFdsSync("abs", [f.fd]);
      using r = server.recvFdsSync(1);
      expect(text(r.data)).toBe("abs");
      expect(readAllAt0(r.fds[0]!.fd)).toBe("abstract");
    } finally {
      closeSync(f.fd);
    }
    // Abstract names are kernel-only; the name is free again once the listener closes.
    listener.close();
    expect(() => UnixStream.connectSync(name)).toThrow(SystemError);
    using again = UnixListener.bindSync(name);
    expect(again.closed).toBe(false);
  });

  test("abstract-namespace seqpacket listener", () => {
    const name = `\0unix-ancillary-sp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    using listener = UnixSeqpacketListener.bindSync(name);
    using client = UnixSeqpacket.connectSync(name);
    using server = listener.acceptSync();
    client.sendFdsSync("sp", [0]);
    using r = server.recvFdsExactSync(1);
    expect(text(r.data)).toBe("sp");
  });

  test("filesystem listener with mode 0o600: socket file is 0600 and is unlinked on close", () => {
    const path = join(dir, "listener.sock");
    const listener = UnixListener.bindSync(path, { mode: 0o600 });
    try {
      const st = statSync(path);
      expect(st.isSocket()).toBe(true);
      expect(st.mode & 0o7777).toBe(0o600);
      using client = UnixStream.connectSync(path);
      using server = listener.acceptSync();
      client.sendFdsSync("fs", [0]);
      using r = server.recvFdsSync(1);
      expect(text(r.data)).toBe("fs");
      expect(r.fds).toHaveLength(1);
    } finally {
      listener.close();
    }
    expect(existsSync(path)).toBe(false);
    expect(() => UnixStream.connectSync(path)).toThrow(SystemError);
  });

  test("stream EOF: 0 bytes and no fds, every time", () => {
    const [tx, rx] = UnixStream.pair();
    using _rx = rx;
    tx.sendFdsSync("last", [0]);
    tx.close();
    {
      using r = rx.recvFdsSync(1);
      expect(text(r.data)).toBe("last");
      expect(r.fds).toHaveLength(1);
    }
    for (let i = 0; i < 2; i++) {
      using eof = rx.recvFdsSync(4);
      expect(eof.data.length).toBe(0);
      expect(eof.fds).toHaveLength(0);
    }
    const into = rx.recvFdsIntoSync(4, new Uint8Array(8));
    expect(into.bytesRead).toBe(0);
    expect(into.fds).toHaveLength(0);
  });

  test("recvFdsSync / sendFdsSync on a closed socket throw ERR_UA_CLOSED", () => {
    const [a, b] = UnixStream.pair();
    using _b = b;
    a.close();
    a.close(); // idempotent
    expect(a.closed).toBe(true);
    expectUaError(() => a.recvFdsSync(1), "ERR_UA_CLOSED", "Closed");
    expectUaError(() => a.recvFdsIntoSync(1, new Uint8Array(1)), "ERR_UA_CLOSED", "Closed");
    expectUaError(() => a.sendFdsSync("x", [0]), "ERR_UA_CLOSED", "Closed");
    expectUaError(() => a.fd, "ERR_UA_CLOSED", "Closed");
  });

  test("sending a closed OwnedFd throws ERR_UA_CLOSED before any syscall", () => {
    const [tx, rx] = UnixStream.pair();
    using _tx = tx;
    using _rx = rx;
    const f = tempFile("c");
    const owned = OwnedFd.from(f.fd);
    owned.close();
    expectUaError(() => tx.sendFdsSync("x", [owned]), "ERR_UA_CLOSED", "Closed");
    // Nothing was sent: the next receive sees only this byte.
    tx.sendFdsSync("y");
    using r = rx.recvFdsSync(1);
    expect(text(r.data)).toBe("y");
  });
});
