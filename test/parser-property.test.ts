/**
 * Property tests of the control-message parser over random bytes (the TS counterpart of the crate's
 * fuzz target parse_cmsg, docs/design.md, "Wire format"): at every start offset 0..8 of a larger
 * buffer, parseControlMessages and CmsgCursor never throw, always terminate, yield at most
 * floor(len / header_len) messages, never describe bytes outside the slice, report only non-negative fds,
 * and — the audit P1 invariant — never create or close an fd, even when the random bytes name fds that
 * are open in this process. Plus an encode→decode round trip at random offsets.
 *
 * A seeded PRNG makes every failure reproducible: the failing seed/case is in the assertion message.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { abi } from "../src/platform/index.ts";
import { libc } from "../src/platform/libc.ts";
import { appendCredentials, appendRights, CmsgCursor, cmsgSpace, parseControlMessages, viewOf } from "../src/cmsg/index.ts";
import { openFds, fdSnapshot, newFdsSince } from "./helpers/fds.ts";
import { closeRaw, pipeRaw, readRaw, writeRaw } from "./fixtures/libc.ts";

const SEED = Number(process.env.PARSER_PROPERTY_SEED ?? 0x5eed_cafe);
const C = abi.cmsg;
const K = abi.constants;
const H = C.headerLen;
const OFFSETS = [0, 1, 2, 3, 4, 5, 6, 7, 8];

/**
 * Runs test/fixtures/parser-termination.ts in a child with a time limit. A parser that loops forever
 * then fails this check instead of hanging the whole run; later parser tests refuse to run in-process
 * (requireTermination) so they cannot hang either.
 */
const TERMINATION_FIXTURE = new URL("./fixtures/parser-termination.ts", import.meta.url).pathname;
let parserTerminates: boolean | null = null;
function checkTerminationInChild(seed: number, randomCases: number): void {
  const r = Bun.spawnSync({ cmd: [process.execPath, TERMINATION_FIXTURE, String(seed), String(randomCases)], timeout: 20_000, stdout: "pipe", stderr: "pipe" });
  const out = r.stdout.toString().trim();
  parserTerminates = r.exitCode === 0 && out.startsWith("ok ");
  if (!parserTerminates) {
    throw new Error(`parser did not terminate/finish in a child within 20 s (exit ${r.exitCode}, signal ${r.signalCode}): ${out} ${r.stderr.toString().slice(0, 500)}`);
  }
}
function requireTermination(): void {
  if (parserTerminates !== true) throw new Error("not run in-process: the parser failed the child-process termination check");
}

/** mulberry32: small, fast, seedable. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let pipe: [number, number];
let liveFds: number[];

beforeAll(() => {
  pipe = pipeRaw();
  liveFds = [0, 1, 2, pipe[0], pipe[1], ...openFds()];
});
afterAll(() => {
  closeRaw(pipe[0]);
  closeRaw(pipe[1]);
});

/**
 * Random control bytes. Half are pure noise; the other half are structured so the walker gets deep:
 * plausible headers (SOL_SOCKET/SCM_RIGHTS/SCM_CREDENTIALS or random kinds), lengths that are sometimes
 * exact, sometimes off by a little, sometimes huge, and fd payloads drawn mostly from fds that are OPEN
 * in this process (0, 1, 2, our pipe) and negative numbers.
 */
function randomControl(rnd: () => number): Uint8Array {
  const len = Math.floor(rnd() * 220);
  const bytes = new Uint8Array(len);
  if (rnd() < 0.4) {
    for (let i = 0; i < len; i++) bytes[i] = Math.floor(rnd() * 256);
    return bytes;
  }
  const dv = viewOf(bytes);
  let at = 0;
  while (at + H <= len) {
    const nfds = Math.floor(rnd() * 6);
    const payload = rnd() < 0.8 ? nfds * 4 : Math.floor(rnd() * 30);
    const r = rnd();
    let cmsgLen: number;
    if (r < 0.6) cmsgLen = H + payload;
    else if (r < 0.7) cmsgLen = Math.floor(rnd() * H); // too short
    else if (r < 0.8) cmsgLen = len - at + 1 + Math.floor(rnd() * 8); // too long
    else if (r < 0.9) cmsgLen = Math.floor(rnd() * 2 ** 32);
    else cmsgLen = len - at; // exactly the rest
    dv.setUint32(at + C.len.offset, cmsgLen >>> 0, true);
    if (C.len.size === 8) dv.setUint32(at + C.len.offset + 4, rnd() < 0.9 ? 0 : Math.floor(rnd() * 2 ** 32), true);
    const k = rnd();
    dv.setInt32(at + C.level.offset, k < 0.85 ? K.SOL_SOCKET : Math.floor(rnd() * 2 ** 32) | 0, true);
    dv.setInt32(at + C.type.offset, k < 0.65 ? K.SCM_RIGHTS : k < 0.8 && K.SCM_CREDENTIALS >= 0 ? K.SCM_CREDENTIALS : Math.floor(rnd() * 8), true);
    for (let p = 0; p + 4 <= payload && at + H + p + 4 <= len; p += 4) {
      const q = rnd();
      const v = q < 0.6 ? liveFds[Math.floor(rnd() * liveFds.length)]! : q < 0.8 ? -1 - Math.floor(rnd() * 2 ** 31) : Math.floor(rnd() * 2 ** 32) | 0;
      dv.setInt32(at + H + p, v, true);
    }
    at += rnd() < 0.85 ? cmsgSpace(abi, payload) : H + Math.floor(rnd() * 24);
  }
  return bytes;
}

describe("parser over random bytes", () => {
  test("terminates (child process, 20 s limit)", () => {
    checkTerminationInChild(SEED, 5000);
  });

  test("never throws, terminates, stays in bounds, yields only non-negative fds, owns nothing", async () => {
    requireTermination();
    // Hook every way the library could create or close an fd owner: OwnedFd registers with a
    // FinalizationRegistry on construction, and every close goes through libc.close.
    const lib = libc as unknown as { close: (fd: number) => number };
    const realClose = lib.close;
    const realRegister = FinalizationRegistry.prototype.register;
    let closes = 0;
    let registrations = 0;
    lib.close = (fd: number) => {
      closes++;
      return realClose(fd);
    };
    FinalizationRegistry.prototype.register = function (this: FinalizationRegistry<unknown>, ...args: unknown[]) {
      registrations++;
      return (realRegister as (...a: unknown[]) => void).apply(this, args);
    } as typeof FinalizationRegistry.prototype.register;

    const before = fdSnapshot();
    const rnd = prng(SEED);
    const CASES = 2600;
    let cases = 0;
    let yielded = 0;
    let rightsFdsSeen = 0;
    let liveFdsSeen = 0;
    const cursor = new CmsgCursor(abi); // reused across resets, like the receive path
    try {
      for (let c = 0; c < CASES; c++) {
        const ctl = randomControl(rnd);
        for (const off of OFFSETS) {
          const tail = Math.floor(rnd() * 24);
          const backing = new Uint8Array(off + ctl.length + tail);
          for (let i = 0; i < backing.length; i++) backing[i] = Math.floor(rnd() * 256);
          backing.set(ctl, off);
          const slice = backing.subarray(off, off + ctl.length);
          const len = ctl.length;
          const maxMsgs = Math.floor(len / H);
          const where = `seed=${SEED} case=${c} offset=${off} len=${len}`;

          // parseControlMessages
          let parsed;
          try {
            parsed = parseControlMessages(abi, slice);
          } catch (e) {
            throw new Error(`parseControlMessages threw at ${where}: ${e}`);
          }
          cases++;
          if (parsed.length > maxMsgs) throw new Error(`too many messages (${parsed.length} > ${maxMsgs}) at ${where}`);
          for (const m of parsed) {
            if (m.type === "rights") {
              if (m.fds.length * 4 > len - H) throw new Error(`rights longer than the slice at ${where}`);
              for (const fd of m.fds) {
                if (!Number.isInteger(fd) || fd < 0) throw new Error(`negative/non-integer fd ${fd} at ${where}`);
                if (liveFds.includes(fd)) liveFdsSeen++;
              }
              rightsFdsSeen += m.fds.length;
            } else if (m.type === "other") {
              if (m.dataOffset < H || m.dataLength < 0 || m.dataOffset + m.dataLength > len) {
                throw new Error(`out-of-slice payload ${m.dataOffset}+${m.dataLength} at ${where}`);
              }
            }
          }

          // CmsgCursor over the whole backing buffer, started at `off`: must not step past off+len
          let steps = 0;
          try {
            cursor.reset(new DataView(backing.buffer), off, len);
            while (cursor.next()) {
              if (++steps > maxMsgs) throw new Error(`cursor yielded more than ${maxMsgs} messages`);
              if (cursor.dataOffset < off + H || cursor.dataLength < 0 || cursor.dataOffset + cursor.dataLength > off + len) {
                throw new Error(`cursor payload ${cursor.dataOffset}+${cursor.dataLength} outside [${off}, ${off + len})`);
              }
              if (cursor.fdSlots * 4 > cursor.dataLength) throw new Error("fdSlots exceeds payload");
              for (let i = 0; i < cursor.fdSlots; i++) cursor.fdAt(i);
              if (cursor.isCredentials()) cursor.credentials();
              cursor.isRights();
            }
            if (cursor.next()) throw new Error("cursor resumed after ending");
          } catch (e) {
            throw new Error(`CmsgCursor failed at ${where}: ${e}`);
          }
          cases++;
          if (steps !== parsed.length) throw new Error(`cursor and parseControlMessages disagree (${steps} vs ${parsed.length}) at ${where}`);
          yielded += steps;
        }
      }
    } finally {
      // OwnedFd enrolls in its FinalizationRegistry from a microtask queued during the loop: let the
      // microtask queue drain (FIFO, so that flush runs first) while the hooks are still installed, so an
      // owner created from parsed bytes is seen. No macrotask runs in this window, so leftovers of other
      // test files (timers, sockets) cannot call close here.
      await Promise.resolve();
      await Promise.resolve();
      lib.close = realClose;
      FinalizationRegistry.prototype.register = realRegister;
    }
    const created = newFdsSince(before);
    if (process.env.PARSER_PROPERTY_STATS) console.log({ cases, yielded, rightsFdsSeen, liveFdsSeen });
    expect(cases).toBeGreaterThanOrEqual(20_000);
    // the generator really exercised the dangerous part: open fd numbers came out of the parser
    expect(yielded).toBeGreaterThan(5_000);
    expect(rightsFdsSeen).toBeGreaterThan(1_000);
    expect(liveFdsSeen).toBeGreaterThan(500);
    // ...and nothing was owned or closed
    expect({ registrations, closes }).toEqual({ registrations: 0, closes: 0 });
    expect(created).toEqual([]); // (fds other tests close meanwhile are not this test's business)
  });

  test("the pipe named in the random bytes is still open and connected", () => {
    expect(writeRaw(pipe[1], "ok")).toBe(2);
    expect(readRaw(pipe[0], 16)).toBe(2);
  });
});

describe("round trip", () => {
  test("random fd lists encoded with appendRights at random offsets decode identically", () => {
    requireTermination();
    const rnd = prng(SEED ^ 0x1234_5678);
    let cases = 0;
    for (let c = 0; c < 3000; c++) {
      const nmsgs = 1 + Math.floor(rnd() * 4);
      const lists: number[][] = [];
      for (let m = 0; m < nmsgs; m++) {
        const n = Math.floor(rnd() * (rnd() < 0.1 ? 253 : 8));
        const fds: number[] = [];
        for (let i = 0; i < n; i++) fds.push(rnd() < 0.5 ? Math.floor(rnd() * 1024) : Math.floor(rnd() * 0x8000_0000));
        lists.push(fds);
      }
      const withCreds = abi.os === "linux" && rnd() < 0.3;
      const off = Math.floor(rnd() * 9);
      const size = lists.reduce((s, l) => s + cmsgSpace(abi, l.length * 4), 0) + (withCreds ? cmsgSpace(abi, 12) : 0);
      const backing = new Uint8Array(off + size + 7).fill(0xcc);
      const slice = backing.subarray(off, off + size);
      const dv = viewOf(slice);
      let at = 0;
      const credsAt = withCreds ? Math.floor(rnd() * (lists.length + 1)) : -1;
      const want: unknown[] = [];
      const pid = Math.floor(rnd() * 2 ** 31), uid = Math.floor(rnd() * 2 ** 32), gid = Math.floor(rnd() * 2 ** 32);
      for (let m = 0; m <= lists.length; m++) {
        if (m === credsAt) {
          at = appendCredentials(abi, slice, dv, at, pid, uid, gid);
          want.push({ type: "credentials", pid, uid, gid });
        }
        if (m < lists.length) {
          at = appendRights(abi, slice, dv, at, lists[m]!);
          want.push({ type: "rights", fds: lists[m] });
        }
        expect(at).toBeGreaterThanOrEqual(0);
      }
      expect(at).toBe(size);
      const got = parseControlMessages(abi, slice, at);
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        throw new Error(`round trip mismatch seed=${SEED} case=${c} offset=${off}: ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
      }
      // bytes outside the slice untouched
      for (let i = 0; i < off; i++) if (backing[i] !== 0xcc) throw new Error(`wrote before the slice at case ${c}`);
      for (let i = off + size; i < backing.length; i++) if (backing[i] !== 0xcc) throw new Error(`wrote after the slice at case ${c}`);
      cases++;
    }
    expect(cases).toBe(3000);
  });
});
