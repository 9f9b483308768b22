/**
 * The control-message registry (src/cmsg/kinds.ts) and what the low-level API yields from it: known
 * kinds decoded, every fd-carrying kind owned, unknown kinds as raw bytes (never fds).
 */
import { expect, test } from "bun:test";
import { closeSync, fstatSync, readdirSync, readlinkSync } from "node:fs";
import { cmsgRecvmsg, setPassCred, SocketAncillary, UnixDatagram, type AncillaryMessage } from "../src/index.ts";
import { abi, ABIS, K } from "../src/platform/index.ts";
import { appendCmsg, kindsOf, parseControlMessages, viewOf } from "../src/cmsg/index.ts";
import { pipe, setsockoptInt } from "../src/sys.ts";

test("every ABI's registry takes its numbers from its platform table; rights is the only fd kind there is on every ABI", () => {
  for (const [name, table] of Object.entries(ABIS)) {
    const kinds = kindsOf(table);
    expect([name, kinds.rights.level, kinds.rights.type, kinds.rights.carriesFds]).toEqual([name, table.constants.SOL_SOCKET, table.constants.SCM_RIGHTS, true]);
    expect(kinds.find(table.constants.SOL_SOCKET, table.constants.SCM_RIGHTS)).toBe(kinds.rights);
    for (const k of kinds.all) {
      expect(k.level).toBeGreaterThanOrEqual(0);
      expect(k.type).toBeGreaterThanOrEqual(0);
      expect(kinds.find(k.level, k.type)).toBe(k);
    }
    // no two kinds share a (level, type)
    expect(new Set(kinds.all.map((k) => `${k.level}:${k.type}`)).size).toBe(kinds.all.length);
    expect(kinds.credentials === null).toBe(table.ucred === null || table.constants.SCM_CREDENTIALS < 0);
  }
});

test("parser: a kind the registry does not know is reported as other, never as fds", () => {
  const bytes = new Uint8Array(64);
  const end = appendCmsg(abi, bytes, viewOf(bytes), 0, K.SOL_SOCKET, 99, 8, (v, at) => {
    v.setInt32(at, 3, true);
    v.setInt32(at + 4, 4, true);
  });
  expect(parseControlMessages(abi, bytes, end)).toEqual([{ type: "other", level: K.SOL_SOCKET, cmsgType: 99, dataOffset: abi.cmsg.headerLen, dataLength: 8 }]);
});

test("cmsgRecvmsg yields timestamp, credentials and rights from one datagram; clear() closes the fds not taken", () => {
  if (abi.os !== "linux") return;
  const [a, b] = UnixDatagram.pair();
  try {
    setPassCred(b, true);
    try {
      setsockoptInt(b.fd, K.SOL_SOCKET, K.SO_TIMESTAMPNS, 1);
    } catch {
      setsockoptInt(b.fd, K.SOL_SOCKET, K.SO_TIMESTAMP, 1); // qemu-user refuses SO_TIMESTAMPNS
    }
    const dev = fstatSync(0).ino;
    a.sendFdsSync("x", [0, 0, 0]);
    const anc = new SocketAncillary(new Uint8Array(512));
    const r = cmsgRecvmsg(b, [new Uint8Array(4)], anc);
    expect(r).toEqual({ bytesRead: 1, truncated: false, dataTruncated: false });
    const seen: AncillaryMessage[] = [...anc.messages()];
    const byType = Object.fromEntries(seen.map((m) => [m.type, m]));
    expect(Object.keys(byType).sort()).toEqual(["credentials", "rights", "timestamp"]);
    const ts = byType.timestamp as Extract<AncillaryMessage, { type: "timestamp" }>;
    expect(Math.abs(ts.seconds - Date.now() / 1000)).toBeLessThan(120);
    expect(ts.nanoseconds).toBeGreaterThanOrEqual(0);
    expect(ts.nanoseconds).toBeLessThan(1e9);
    const cred = (byType.credentials as Extract<AncillaryMessage, { type: "credentials" }>).credentials;
    expect(cred.pid).toBe(process.pid);
    const rights = (byType.rights as Extract<AncillaryMessage, { type: "rights" }>).fds;
    expect(rights.remaining).toBe(3);
    const first = rights.next().value!;
    expect(fstatSync(first.fd).ino).toBe(dev);
    first.close();
    anc.clear(); // closes the two not taken
    expect(rights.remaining).toBe(0);
  } finally {
    a.close();
    b.close();
  }
});

test("SO_TIMESTAMP (microseconds) decodes to seconds + nanoseconds", () => {
  const [a, b] = UnixDatagram.pair();
  try {
    setsockoptInt(b.fd, K.SOL_SOCKET, K.SO_TIMESTAMP, 1);
    a.sendFdsSync("x", []);
    using anc = new SocketAncillary(new Uint8Array(128));
    cmsgRecvmsg(b, [new Uint8Array(4)], anc);
    const [m] = [...anc.messages()];
    expect(m!.type).toBe("timestamp");
    const ts = m as Extract<AncillaryMessage, { type: "timestamp" }>;
    expect(Math.abs(ts.seconds - Date.now() / 1000)).toBeLessThan(120);
    expect(ts.nanoseconds % 1000).toBe(0);
  } finally {
    a.close();
    b.close();
  }
});

test("a decode that throws part-way: every fd of every message of that receive is closed, the error propagates", () => {
  if (abi.os !== "linux") return;
  const creds = kindsOf(abi).credentials! as { message: unknown };
  const real = creds.message;
  const [a, b] = UnixDatagram.pair();
  const [r, w] = pipe();
  try {
    setPassCred(b, true); // the kernel writes SCM_CREDENTIALS before SCM_RIGHTS: the throw comes first
    a.sendFdsSync("x", [r, r, r]);
    creds.message = () => {
      throw new Error("decode failed");
    };
    const anc = new SocketAncillary(new Uint8Array(256));
    const target = readlinkSync(`/proc/self/fd/${r}`);
    const copies = () => readdirSync("/proc/self/fd").filter((n) => { try { return readlinkSync(`/proc/self/fd/${n}`) === target; } catch { return false; } }).length;
    const before = copies();
    expect(() => cmsgRecvmsg(b, [new Uint8Array(4)], anc)).toThrow("decode failed");
    expect(copies()).toBe(before);
    expect([...anc.messages()]).toEqual([]);
  } finally {
    creds.message = real;
    closeSync(r);
    closeSync(w);
    a.close();
    b.close();
  }
});
