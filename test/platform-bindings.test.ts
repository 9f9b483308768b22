/**
 * Binding check: for every ABI table, every libc function the code can call under that ABI's flags is
 * bound by the ABI's dlopen symbol set, with the signature of its C prototype. A function missing from
 * a set is a TypeError at the first call on that platform (FreeBSD's accept4 was one); a wrong width
 * or a variadic argument in the wrong place corrupts arguments silently.
 *
 * "What the code can call" comes from the code: LIBC_CALLS (src/platform/symbols.ts) declares each
 * function and when it is called, and this test fails unless that list names exactly the functions
 * src/ uses as `libc.<name>` (or destructures from `libc`).
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { FFIType, type FFIFunction } from "bun:ffi";
import { ABIS } from "../src/platform/index.ts";
import type { Abi } from "../src/platform/abi.ts";
import { LIBC_CALLS, symbolSetFor } from "../src/platform/symbols.ts";
import { reactorWorkerMain, type ReactorWorkerData } from "../src/async/reactor-worker.ts";

const SRC = join(import.meta.dir, "..", "src");

/** Every .ts file under src/. */
function sourceFiles(dir = SRC): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (name.endsWith(".ts")) out.push(p);
  }
  return out;
}

/** The code with comments and string/template literals blanked out (so "libc.so.7" is not a call). */
export function codeOnly(src: string): string {
  let out = "";
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    const n = src[i + 1];
    if (c === "/" && n === "/") {
      while (i < src.length && src[i] !== "\n") i++;
    } else if (c === "/" && n === "*") {
      const end = src.indexOf("*/", i + 2);
      i = end < 0 ? src.length : end + 2;
      out += " ";
    } else if (c === '"' || c === "'" || c === "`") {
      i++;
      while (i < src.length && src[i] !== c) i += src[i] === "\\" ? 2 : 1;
      i++;
      out += '""';
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** libc function names used in `code`: `libc.x`, `libc!.x`, `libc?.x`, `const { x: y, z } = libc`. */
function libcUses(code: string): { names: Set<string>; dynamic: boolean } {
  const names = new Set<string>();
  for (const m of code.matchAll(/\blibc\s*[!?]?\s*\.\s*([A-Za-z_$][\w$]*)/g)) names.add(m[1]!);
  for (const m of code.matchAll(/\{([^{}]*)\}\s*=\s*libc\b/g)) {
    for (const part of m[1]!.split(",")) {
      const key = part.split(":")[0]!.trim();
      if (key) names.add(key);
    }
  }
  return { names, dynamic: /\blibc\s*[!?]?\s*(?:\?\.)?\s*\[/.test(code) };
}

function scanSrc(): { calls: Map<string, string[]>; problems: string[] } {
  const calls = new Map<string, string[]>();
  const problems: string[] = [];
  for (const file of sourceFiles()) {
    const rel = file.slice(SRC.length + 1);
    const code = codeOnly(readFileSync(file, "utf8"));
    if (/\blibc\s+as\s+\w/.test(code)) problems.push(`${rel}: imports libc under another name (the scan would miss its calls)`);
    const { names, dynamic } = libcUses(code);
    if (dynamic) problems.push(`${rel}: indexes libc dynamically (libc[...]); call functions by name`);
    for (const n of names) calls.set(n, [...(calls.get(n) ?? []), rel]);
  }
  return { calls, problems };
}

// ---- C prototypes --------------------------------------------------------------------------------
// The reference signatures, from the C headers (POSIX, glibc/musl, xnu, freebsd-src): int -> i32,
// unsigned int/uid_t/gid_t/socklen_t -> u32, size_t/unsigned long -> u64, ssize_t -> i64, any pointer
// -> ptr. nfds_t and mode_t differ per OS and are spelled out.

type Sig = { args: string[]; returns: string };
const sig = (returns: string, ...args: string[]): Sig => ({ args, returns });

const FFI_NAMES = new Map<number, string>(Object.entries(FFIType).filter(([k]) => !/^\d+$/.test(k)).map(([k, v]) => [v as number, k]));
/** One canonical spelling per type: "i64_fast" is the i64 return of a function whose result fits a double. */
function canon(t: unknown): string {
  const name = typeof t === "number" ? FFI_NAMES.get(t) ?? `?${t}` : String(t);
  const alias: Record<string, string> = { i64_fast: "i64", u64_fast: "u64", int: "i32", pointer: "ptr", int32_t: "i32", uint32_t: "u32", int64_t: "i64", uint64_t: "u64", usize: "u64", isize: "i64", void: "void" };
  return alias[name] ?? name;
}
function canonSig(f: FFIFunction): Sig {
  return { args: (f.args ?? []).map(canon), returns: canon(f.returns ?? "void") };
}

function prototypes(a: Abi): Record<string, Sig> {
  const bsdLike = a.os !== "linux";
  return {
    // <sys/socket.h>
    socket: sig("i32", "i32", "i32", "i32"),
    socketpair: sig("i32", "i32", "i32", "i32", "ptr"),
    bind: sig("i32", "i32", "ptr", "u32"),
    listen: sig("i32", "i32", "i32"),
    connect: sig("i32", "i32", "ptr", "u32"),
    accept: sig("i32", "i32", "ptr", "ptr"),
    accept4: sig("i32", "i32", "ptr", "ptr", "i32"),
    getsockopt: sig("i32", "i32", "i32", "i32", "ptr", "ptr"),
    setsockopt: sig("i32", "i32", "i32", "i32", "ptr", "u32"),
    getsockname: sig("i32", "i32", "ptr", "ptr"),
    getpeername: sig("i32", "i32", "ptr", "ptr"),
    sendmsg: sig("i64", "i32", "ptr", "i32"),
    recvmsg: sig("i64", "i32", "ptr", "i32"),
    shutdown: sig("i32", "i32", "i32"),
    getpeereid: sig("i32", "i32", "ptr", "ptr"),
    // <sys/ioctl.h>: int ioctl(int, unsigned long, ...) (musl: int request; a register argument whose
    // low 32 bits are the same). Called without a variadic argument (FIOCLEX), so safe on Apple arm64.
    ioctl: sig("i32", "i32", "u64"),
    // <fcntl.h>: int fcntl(int, int, ...). Apple arm64 passes the variadic `arg` on the stack: six i64
    // dummies fill x2..x7 so the int lands in the first stack slot.
    fcntl: a.os === "darwin" && a.arch === "arm64" ? sig("i32", "i32", "i32", "i64", "i64", "i64", "i64", "i64", "i64", "i32") : sig("i32", "i32", "i32", "i32"),
    // <unistd.h>
    close: sig("i32", "i32"),
    read: sig("i64", "i32", "ptr", "u64"),
    write: sig("i64", "i32", "ptr", "u64"),
    pipe: sig("i32", "ptr"),
    pipe2: sig("i32", "ptr", "i32"),
    dup3: sig("i32", "i32", "i32", "i32"),
    unlink: sig("i32", "ptr"),
    getpid: sig("i32"),
    getuid: sig("u32"),
    geteuid: sig("u32"),
    getgid: sig("u32"),
    // <sys/stat.h>: int chmod(const char *, mode_t); mode_t is unsigned int on Linux, __uint16_t on
    // darwin and FreeBSD
    chmod: sig("i32", "ptr", bsdLike ? "u16" : "u32"),
    // <poll.h>: int poll(struct pollfd *, nfds_t, int); nfds_t is unsigned long on Linux, unsigned
    // int on darwin and FreeBSD
    poll: sig("i32", "ptr", bsdLike ? "u32" : "u64", "i32"),
    // <sys/resource.h>
    getrlimit: sig("i32", "i32", "ptr"),
    // <sys/epoll.h>, <sys/eventfd.h>
    epoll_create1: sig("i32", "i32"),
    epoll_ctl: sig("i32", "i32", "i32", "i32", "ptr"),
    epoll_wait: sig("i32", "i32", "ptr", "i32", "i32"),
    eventfd: sig("i32", "u32", "i32"),
    // <sys/event.h>
    kqueue: sig("i32"),
    kevent: sig("i32", "i32", "ptr", "i32", "ptr", "i32", "ptr"),
    // <errno.h>: int *__errno_location(void) (Linux), int *__error(void) (darwin, FreeBSD)
    __errno_location: sig("ptr"),
    __error: sig("ptr"),
  };
}

const ERRNO_SYMBOLS = new Set(Object.values(ABIS).map((a) => a.errnoSymbol));

describe("LIBC_CALLS is what src/ calls", () => {
  const { calls, problems } = scanSrc();

  test("the scan finds the calls (sanity: sendmsg via destructuring, accept4 via libc.accept4)", () => {
    expect(calls.has("sendmsg")).toBe(true);
    expect(calls.has("accept4")).toBe(true);
    expect(calls.has("kevent")).toBe(true);
    expect(problems).toEqual([]);
  });

  test("every libc function used in src/ is declared in LIBC_CALLS", () => {
    const undeclared = [...calls.keys()].filter((n) => !(n in LIBC_CALLS)).map((n) => `${n} (${calls.get(n)!.join(", ")})`);
    expect(undeclared).toEqual([]);
  });

  test("every declared function is used in src/ (the errno function through abi.errnoSymbol)", () => {
    const unused = Object.keys(LIBC_CALLS).filter((n) => !calls.has(n) && !ERRNO_SYMBOLS.has(n as Abi["errnoSymbol"]));
    expect(unused).toEqual([]);
  });
});

describe.each(Object.values(ABIS).map((a) => [a.name, a] as const))("%s binds what it calls", (_name, a) => {
  const set = symbolSetFor(a);
  const protos = prototypes(a);

  test("every function the code can call on this ABI is in its dlopen symbol set", () => {
    const needed = Object.entries(LIBC_CALLS).filter(([, when]) => when(a)).map(([n]) => n);
    const missing = needed.filter((n) => !(n in set));
    expect({ abi: a.name, missing }).toEqual({ abi: a.name, missing: [] });
  });

  test("every bound function has its C prototype's signature", () => {
    const wrong: string[] = [];
    for (const [n, f] of Object.entries(set)) {
      const want = protos[n];
      if (!want) {
        wrong.push(`${n}: no C prototype known to this test`);
        continue;
      }
      const got = canonSig(f);
      if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push(`${n}: bound ${JSON.stringify(got)}, C prototype ${JSON.stringify(want)}`);
    }
    expect({ abi: a.name, wrong }).toEqual({ abi: a.name, wrong: [] });
  });

  test("the errno function of the table is bound", () => {
    expect(a.errnoSymbol in set).toBe(true);
  });

  test("the reactor Worker's own dlopen (its wait function and errno) binds the C prototypes under this ABI's name", () => {
    // The Worker is a self-contained function: run it with a bun:ffi stand-in that records its dlopen.
    let seen: { name: string; symbols: Record<string, FFIFunction> } | null = null;
    const stop = new Error("recorded");
    const ffi = {
      dlopen: (name: string, symbols: Record<string, FFIFunction>) => {
        seen = { name, symbols };
        throw stop;
      },
    };
    const data = { backend: a.os === "linux" ? "epoll" : "kqueue", pollFd: 3, maxEvents: 1, libName: a.libName, errnoSymbol: a.errnoSymbol, EINTR: a.errno.EINTR, recordSize: 16, tokenOffset: 0, statusOffset: 8 } as ReactorWorkerData;
    expect(() => reactorWorkerMain(ffi as never, data, () => {})).toThrow(stop);
    const got = seen as { name: string; symbols: Record<string, FFIFunction> } | null;
    expect(got?.name).toBe(a.libName);
    const names = Object.keys(got!.symbols).sort();
    expect(names).toEqual([a.errnoSymbol, a.os === "linux" ? "epoll_wait" : "kevent"].sort());
    for (const n of names) expect({ n, sig: canonSig(got!.symbols[n]!) }).toEqual({ n, sig: protos[n]! });
  });
});

describe("the scanner", () => {
  test("ignores comments and strings, sees member, non-null and destructured uses", () => {
    const code = codeOnly(`// libc.fake1()\n/* libc.fake2 */ const s = "libc.so.7"; libc.real1(); libc!.real2(); const { real3: x, real4 } = libc;`);
    expect([...libcUses(code).names].sort()).toEqual(["real1", "real2", "real3", "real4"]);
  });
});
