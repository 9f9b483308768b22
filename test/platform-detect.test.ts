import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { detectAbiName, UnsupportedPlatformError, abi, ABIS } from "../src/platform/index.ts";
import { libcFromMaps } from "../src/platform/detect.ts";
import { SocketAncillary, cmsgSendmsg, UnixDatagram } from "../src/index.ts";

describe("ABI selection", () => {
  test("the running process gets the table for its platform, arch and libc", () => {
    expect(abi.os).toBe(process.platform as typeof abi.os);
    expect(abi.arch).toBe(process.arch as typeof abi.arch);
    const expected = process.env.BUN_TEST_ABI; // set by scripts/run-abi.sh: linux-<arch>-<glibc|musl>
    if (expected) expect(abi.name).toBe(expected.replace("glibc", "gnu") as typeof abi.name);
    expect(ABIS[abi.name]).toBe(abi);
  });

  test("every supported platform/arch maps to a table", () => {
    expect(detectAbiName("darwin", "arm64")).toBe("darwin-arm64");
    expect(detectAbiName("darwin", "x64")).toBe("darwin-x64");
    expect(detectAbiName("freebsd", "x64")).toBe("freebsd-x64");
    expect(["linux-x64-gnu", "linux-x64-musl"]).toContain(detectAbiName("linux", "x64"));
  });

  test("an unsupported platform fails with a clear, typed error", () => {
    for (const [platform, arch] of [["win32", "x64"], ["linux", "ia32"], ["freebsd", "arm64"], ["sunos", "x64"]]) {
      let err: unknown;
      try {
        detectAbiName(platform, arch);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UnsupportedPlatformError);
      expect((err as UnsupportedPlatformError).code).toBe("ERR_UA_UNSUPPORTED");
      expect((err as Error).message).toContain(`${platform}-${arch}`);
      expect((err as Error).message).toContain("supported ABIs are");
    }
  });
});

describe("per-message control-data limit", () => {
  test("a low-level send over the libc limit is refused with a clear error before the syscall", () => {
    const [a, b] = UnixDatagram.pair();
    using _a = a;
    using _b = b;
    const anc = new SocketAncillary(new Uint8Array(4096));
    // 250 fds in 5 messages = 1080 bytes: within the kernel's 253 fds per sendmsg, over musl's 1024 bytes
    for (let i = 0; i < 5; i++) anc.addFds(new Array(50).fill(0));
    expect(anc.length).toBe(5 * SocketAncillary.bufferSizeForRights(50));
    if (abi.maxSendControlBytes === null) {
      expect(cmsgSendmsg(a, ["x"], anc)).toBe(1);
      using r = b.recvFdsSync(250);
      expect(r.fds.length).toBe(250);
    } else {
      expect(() => cmsgSendmsg(a, ["x"], anc)).toThrow(expect.objectContaining({ code: "ERR_UA_TOO_MANY_FDS" }));
      b.shutdown("read");
    }
  });
});

describe("libc detection from the mapped files (no diagnostic report)", () => {
  const cases: [string, string, "gnu" | "musl" | null][] = [
    ["Debian glibc x86_64", "7f..-7f.. r-xp 00000000 08:01 123 /usr/lib/x86_64-linux-gnu/libc.so.6\n7f.. r--p 0 08:01 9 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "gnu"],
    ["glibc aarch64 under qemu-user", "5500-5600 r-xp 0 00:00 0 /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1\n5600-5700 r-xp 0 0:0 0 /usr/aarch64-linux-gnu/lib/libc.so.6", "gnu"],
    ["old glibc naming", "7f.. r-xp 0 08:01 1 /lib/x86_64-linux-gnu/libc-2.31.so", "gnu"],
    ["Alpine (loader and libc in one file)", "7f.. r-xp 0 08:01 1 /lib/ld-musl-x86_64.so.1", "musl"],
    ["Debian's musl package", "7f.. r-xp 0 08:01 1 /tmp/bun-abi/x64-musl-run/bun\n7f.. r-xp 0 08:01 1 /usr/lib/x86_64-linux-musl/libc.so", "musl"],
    ["musl aarch64 root under qemu-user", "5500 r-xp 0 0:0 0 /tmp/bun-abi/arm64-musl-root/lib/aarch64-linux-musl/libc.so", "musl"],
    ["glibc process started from a directory named musl", "7f.. r-xp 0 08:01 1 /home/u/musl/bun\n7f.. r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6", "gnu"],
    ["nothing recognisable (static binary)", "7f.. r-xp 0 08:01 1 /opt/app/bun\n7ffd [stack]", null],
  ];
  for (const [name, maps, want] of cases) {
    test(name, () => expect(libcFromMaps(maps)).toBe(want));
  }

  test("this process's maps give the ABI run-abi.sh selected", () => {
    const got = libcFromMaps(readFileSync("/proc/self/maps", "latin1"));
    if (process.platform === "linux") expect(got).toBe(abi.libc === "musl" ? "musl" : "gnu");
    const expected = process.env.BUN_TEST_ABI;
    if (expected) expect(got).toBe(expected.endsWith("musl") ? "musl" : "gnu");
  });

  test("importing the platform layer never builds a diagnostic report", () => {
    const code = `let calls = 0;
      const real = process.report.getReport.bind(process.report);
      process.report.getReport = (...a) => { calls++; return real(...a); };
      const m = await import(${JSON.stringify(new URL("../src/platform/index.ts", import.meta.url).pathname)});
      console.log(m.abi.name, calls);`;
    const r = spawnSync(process.execPath, ["-e", code], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(`${abi.name} 0`);
  });
});
