/**
 * Picks the ABI table for the running process from process.platform, process.arch and the libc
 * actually loaded. musl is detected from what the process has mapped, never from "dlopen X
 * succeeded" (musl opens any libc.* name, and a glibc host may have musl installed: docs/design.md, "Per-ABI facts").
 */
import type { AbiName } from "./abi.ts";
import { dlopen } from "bun:ffi";

/**
 * glibc or musl from the libc the process has mapped: glibc maps `.../libc.so.6`; musl maps
 * `/lib/ld-musl-<arch>.so.1` (Alpine: loader and libc in one file) or `.../<arch>-linux-musl/libc.so`
 * (Debian's musl package). Null when neither appears. Exported for tests.
 */
export function libcFromMaps(maps: string): "gnu" | "musl" | null {
  // Plain substring tests: a first-use regex compile alone cost about 0.5 ms here.
  if (maps.includes("/ld-musl-") || maps.includes("-linux-musl/libc.so") || maps.includes("/libc.musl-")) return "musl";
  if (maps.includes("/libc.so.6") || maps.includes("/libc-2.")) return "gnu";
  return null;
}

/**
 * /proc/self/maps as latin1 text, or null. Read through a three-symbol binding of whatever libc
 * "libc.so.6" names (glibc; musl's loader answers any libc.* name with itself) instead of node:fs,
 * whose first import alone costs 4-6 ms of start-up (docs/startup.md); node:fs is the fallback.
 */
function readMaps(): string | null {
  try {
    const lib = dlopen("libc.so.6", {
      open: { args: ["ptr", "i32"], returns: "i32" },
      read: { args: ["i32", "ptr", "u64"], returns: "i32" },
      close: { args: ["i32"], returns: "i32" },
    });
    try {
      const path = new TextEncoder().encode("/proc/self/maps\0");
      const fd = lib.symbols.open(path, 0); // O_RDONLY is 0 on every supported ABI
      if (fd < 0) return null;
      const chunks: string[] = [];
      const buf = new Uint8Array(16384);
      const latin1 = new TextDecoder("latin1");
      try {
        for (let n = lib.symbols.read(fd, buf, buf.length); n !== 0; n = lib.symbols.read(fd, buf, buf.length)) {
          if (n < 0) return null; // EINTR cannot happen without a handler; any error: fall back
          chunks.push(latin1.decode(buf.subarray(0, n)));
        }
      } finally {
        lib.symbols.close(fd);
      }
      return chunks.join("");
    } finally {
      lib.close();
    }
  } catch {
    try {
      return (require("node:fs") as typeof import("node:fs")).readFileSync("/proc/self/maps", "latin1");
    } catch {
      return null;
    }
  }
}

function linuxLibc(): "gnu" | "musl" {
  // 1. What is mapped: one read of /proc/self/maps (qemu-user emulates it for the guest).
  const maps = readMaps();
  if (maps !== null) {
    const r = libcFromMaps(maps);
    if (r !== null) return r;
  }
  // 2. Only without /proc (or with a libc under another name): the diagnostic report names the runtime
  //    glibc on glibc and nothing on musl. It costs 2-15 ms, so it is not the first choice.
  try {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    if (header) return typeof header.glibcVersionRuntime === "string" ? "gnu" : "musl";
  } catch {
    // no report either: assume glibc, the common case
  }
  return "gnu";
}

export class UnsupportedPlatformError extends Error {
  override name = "UnsupportedPlatformError";
  readonly code = "ERR_UA_UNSUPPORTED";
  readonly kind = "Unsupported";
}

export function detectAbiName(platform: string = process.platform, arch: string = process.arch): AbiName {
  const a = arch === "x64" ? "x64" : arch === "arm64" ? "arm64" : null;
  if (a !== null) {
    if (platform === "linux") return `linux-${a}-${linuxLibc()}`;
    if (platform === "darwin") return `darwin-${a}`;
    if (platform === "freebsd" && a === "x64") return "freebsd-x64";
  }
  throw new UnsupportedPlatformError(
    `unix-ancillary does not support ${platform}-${arch}: supported ABIs are linux-x64/arm64 (glibc, musl), darwin-x64/arm64 and freebsd-x64`,
  );
}
