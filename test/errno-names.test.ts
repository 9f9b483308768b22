/**
 * errno names: every errno the OS defines has its libc name in the ABI table, so SystemError.code is
 * never 'E<number>' for a real errno (cmsgSendmsg with a foreign pid used to fail with code "E3").
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { ABIS, abi } from "../src/platform/index.ts";
import { errnoName, SystemError } from "../src/errors.ts";
import { cmsgSendmsg, ScmCredentials, SocketAncillary, UnixDatagram } from "../src/index.ts";

const NAME = /^E[A-Z0-9]+$/;
/** Numbers asm-generic/errno.h leaves unassigned (EWOULDBLOCK/EDEADLOCK are aliases of 11/35). */
const LINUX_UNASSIGNED = new Set([41, 58]);

describe.each(Object.values(ABIS).map((a) => [a.name, a] as const))("%s errno table", (_n, a) => {
  test("every name the library tests for maps back to the same number", () => {
    const wrong = Object.entries(a.errno).filter(([name, n]) => a.errnoNames[n] !== name);
    expect(wrong).toEqual([]);
  });

  test("names are well formed and unique", () => {
    const names = Object.values(a.errnoNames);
    for (const n of names) expect(n).toMatch(NAME);
    expect(new Set(names).size).toBe(names.length);
  });

  test("no gaps from 1 to the OS's last errno", () => {
    const last = { linux: 133, darwin: 107, freebsd: 97 }[a.os];
    const missing: number[] = [];
    for (let i = 1; i <= last; i++) if (!(i in a.errnoNames) && !(a.os === "linux" && LINUX_UNASSIGNED.has(i))) missing.push(i);
    expect(missing).toEqual([]);
    expect(Math.max(...Object.keys(a.errnoNames).map(Number))).toBe(last);
  });
});

test("every Linux errno 1..133 has its libc name (ESRCH 3, EOWNERDEAD 130, EHWPOISON 133)", () => {
  const t = ABIS["linux-x64-gnu"].errnoNames;
  for (let i = 1; i <= 133; i++) {
    if (LINUX_UNASSIGNED.has(i)) continue;
    expect({ i, name: t[i] ?? null }).toEqual({ i, name: expect.stringMatching(NAME) });
  }
  expect([t[3], t[11], t[35], t[95], t[130], t[131], t[132], t[133]]).toEqual(["ESRCH", "EAGAIN", "EDEADLK", "EOPNOTSUPP", "EOWNERDEAD", "ENOTRECOVERABLE", "ERFKILL", "EHWPOISON"]);
  // the four Linux tables share one list
  for (const n of ["linux-x64-musl", "linux-arm64-gnu", "linux-arm64-musl"] as const) expect(ABIS[n].errnoNames).toBe(t);
});

test("the Linux names agree with an independent list (Python's errno module), aliases aside", () => {
  const r = spawnSync("python3", ["-c", "import errno, json; print(json.dumps({n: [k for k, v in vars(errno).items() if k.startswith('E') and v == n] for n in errno.errorcode}))"], { encoding: "utf8" });
  if (r.status !== 0) return void console.warn("python3 not available: cross-check skipped");
  const py = JSON.parse(r.stdout) as Record<string, string[]>;
  const t = ABIS["linux-x64-gnu"].errnoNames;
  const disagree: string[] = [];
  for (const [n, names] of Object.entries(py)) {
    const ours = t[Number(n)];
    if (Number(n) <= 133 && (ours === undefined || !names.includes(ours))) disagree.push(`${n}: ours ${ours}, python ${names.join("/")}`);
  }
  expect(disagree).toEqual([]);
});

test("the running ABI's SystemError uses the table: errnoName(3) is ESRCH, an unknown number E<n>", () => {
  expect(errnoName(abi.errno.EBADF)).toBe("EBADF");
  expect(errnoName(3)).toBe("ESRCH");
  expect(errnoName(9999)).toBe("E9999");
  const e = new SystemError("sendmsg", 3);
  expect(e.code).toBe("ESRCH");
  expect(e.message).toBe("sendmsg failed: ESRCH (no such process)");
});

test.skipIf(abi.os !== "linux")("SCM_CREDENTIALS with a pid that does not exist fails with ESRCH (root) / EPERM, never E3", () => {
  const [a, b] = UnixDatagram.pair();
  using _a = a;
  using _b = b;
  const anc = new SocketAncillary(new Uint8Array(64));
  anc.addCredentials(new ScmCredentials(0x7ffffff0, 0, 0));
  let err: unknown;
  try {
    cmsgSendmsg(a, ["x"], anc);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(SystemError);
  const root = process.getuid?.() === 0;
  expect((err as SystemError).code).toBe(root ? "ESRCH" : "EPERM");
  expect((err as SystemError).errno).toBe(root ? 3 : 1);
  expect((err as Error).message).not.toMatch(/\bE\d+\b/);
});
