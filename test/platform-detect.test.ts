import { describe, expect, test } from "bun:test";
import { detectAbiName, UnsupportedPlatformError, abi, ABIS } from "../src/platform/index.ts";
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
