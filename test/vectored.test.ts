/**
 * Port of the crate's tests/vectored.rs (the Rust crate's test suite, 4 cases) plus the seqpacket variant:
 * sendFdsVectoredSync gathers several buffers into one sendmsg with the fds attached once;
 * recvFdsVectoredSync scatters one recvmsg over several buffers in order.
 */
import { describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MESSAGES, UnixAncillaryError, UnixDatagram, UnixSeqpacket, UnixStream } from "../src/index.ts";
import { fdSnapshot, expectNewFds, expectNoNewFds } from "./helpers/fds.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

function withTempFile<T>(contents: string, body: (fd: number) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "ua-vec-"));
  const path = join(dir, "f");
  writeFileSync(path, contents);
  const fd = openSync(path, "r");
  try {
    return body(fd);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

function readAllAt0(fd: number): string {
  const buf = new Uint8Array(256);
  return text(buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)));
}

describe("vectored", () => {
  test("1. stream_vectored_roundtrip_keeps_order_and_fd", () => {
    const [tx, rx] = UnixStream.pair();
    using _tx = tx;
    using _rx = rx;
    withTempFile("vectored file", (fd) => {
      expect(tx.sendFdsVectoredSync(["HDR:", new TextEncoder().encode("body")], [fd])).toBe(8);
      const head = new Uint8Array(4);
      const body = new Uint8Array(4);
      using r = rx.recvFdsVectoredSync(1, [head, body]);
      expect(r.bytesRead).toBe(8);
      expect(text(head)).toBe("HDR:");
      expect(text(body)).toBe("body");
      expect(r.fds).toHaveLength(1);
      expect(readAllAt0(r.fds[0]!.fd)).toBe("vectored file");
    });
  });

  test("2. stream_vectored_rejects_empty_payload_with_fds", () => {
    const [tx, rx] = UnixStream.pair();
    using _tx = tx;
    using _rx = rx;
    withTempFile("x", (fd) => {
      let caught: unknown;
      try {
        tx.sendFdsVectoredSync([new Uint8Array(0), ""], [fd]);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(UnixAncillaryError);
      expect((caught as UnixAncillaryError).code).toBe("ERR_UA_EMPTY_PAYLOAD");
      expect((caught as UnixAncillaryError).kind).toBe("InvalidInput");
      expect((caught as UnixAncillaryError).message).toBe(MESSAGES.emptyStreamPayload);
      // Nothing went out: the next receive sees only the marker byte and no fd.
      tx.sendFdsSync("m");
      using r = rx.recvFdsSync(2);
      expect(text(r.data)).toBe("m");
      expect(r.fds).toHaveLength(0);
    });
  });

  test("3. stream_vectored_allows_empty_payload_without_fds", () => {
    const [tx, rx] = UnixStream.pair();
    using _tx = tx;
    using _rx = rx;
    expect(tx.sendFdsVectoredSync([new Uint8Array(0)], [])).toBe(0);
    expect(tx.sendFdsVectoredSync([])).toBe(0);
  });

  test("4. datagram_vectored_roundtrip", () => {
    const [tx, rx] = UnixDatagram.pair();
    using _tx = tx;
    using _rx = rx;
    withTempFile("dgram file", (fd) => {
      expect(tx.sendFdsVectoredSync(["ab", "cd"], [fd])).toBe(4);
      const a = new Uint8Array(2);
      const b = new Uint8Array(2);
      using r = rx.recvFdsVectoredSync(1, [a, b]);
      expect(r.bytesRead).toBe(4);
      expect(text(a)).toBe("ab");
      expect(text(b)).toBe("cd");
      expect(r.fds).toHaveLength(1);
      expect(readAllAt0(r.fds[0]!.fd)).toBe("dgram file");
    });
  });
});

describe("vectored: more socket kinds and edges", () => {
  test("seqpacket vectored roundtrip keeps boundaries; an empty record may carry fds", () => {
    const [tx, rx] = UnixSeqpacket.pair();
    using _tx = tx;
    using _rx = rx;
    withTempFile("seq file", (fd) => {
      expect(tx.sendFdsVectoredSync(["seq", "-", "packet"], [fd, fd])).toBe(10);
      expect(tx.sendFdsVectoredSync(["next"], [])).toBe(4);
      expect(tx.sendFdsVectoredSync([""], [fd])).toBe(0);
      const x = new Uint8Array(6);
      const y = new Uint8Array(8);
      {
        using r = rx.recvFdsVectoredSync(2, [x, y]);
        expect(r.bytesRead).toBe(10);
        expect(text(x)).toBe("seq-pa");
        expect(text(y.subarray(0, 4))).toBe("cket");
        expect(r.fds).toHaveLength(2);
        expect(r.fds.map((f) => readAllAt0(f.fd))).toEqual(["seq file", "seq file"]);
      }
      {
        using r = rx.recvFdsVectoredSync(2, [x, y]);
        expect(r.bytesRead).toBe(4); // one record per receive, never merged with the next
        expect(r.fds).toHaveLength(0);
      }
      {
        using r = rx.recvFdsVectoredSync(2, [x, y]);
        expect(r.bytesRead).toBe(0);
        expect(r.fds).toHaveLength(1);
      }
    });
  });

  test("seqpacket vectored receive too small for the record: ERR_UA_DATAGRAM_TRUNCATED, fds closed", () => {
    const [tx, rx] = UnixSeqpacket.pair();
    using _tx = tx;
    using _rx = rx;
    tx.sendFdsVectoredSync(["0123", "4567"], [0, 0]);
    const before = fdSnapshot();
    let caught: unknown;
    try {
      rx.recvFdsVectoredSync(2, [new Uint8Array(3), new Uint8Array(3)]);
    } catch (e) {
      caught = e;
    }
    expect((caught as UnixAncillaryError).code).toBe("ERR_UA_DATAGRAM_TRUNCATED");
    expectNoNewFds(before);
  });

  test("stream vectored: surplus fds beyond maxFds are closed", () => {
    const [tx, rx] = UnixStream.pair();
    using _tx = tx;
    using _rx = rx;
    tx.sendFdsVectoredSync(["a", "b"], [0, 1, 2]);
    const before = fdSnapshot();
    const buf = new Uint8Array(2);
    using r = rx.recvFdsVectoredSync(1, [buf]);
    expect(r.bytesRead).toBe(2);
    expect(r.fds).toHaveLength(1);
    expectNewFds(before, 1);
  });
});
