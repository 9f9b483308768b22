/**
 * Picks the ABI table for the running process from process.platform, process.arch and the libc
 * actually loaded. musl is detected from what the process runs on, never from "dlopen X succeeded"
 * (musl opens any libc.* name, and a glibc host may have musl installed: docs/design.md, "Per-ABI facts").
 */
import type { AbiName } from "./abi.ts";
import { readFileSync } from "node:fs";

function linuxLibc(): "gnu" | "musl" {
  // 1. The runtime glibc version in the process report: present on glibc, absent on musl.
  try {
    const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
    if (header && typeof header.glibcVersionRuntime === "string") return "gnu";
  } catch {
    // fall through to the maps check
  }
  // 2. What is mapped: Debian's musl maps /usr/lib/x86_64-linux-musl/libc.so, Alpine /lib/ld-musl-*.
  try {
    if (/musl/.test(readFileSync("/proc/self/maps", "latin1"))) return "musl";
  } catch {
    // no /proc: assume glibc, the common case
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
