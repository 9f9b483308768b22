/**
 * Control-message fuzz through the kernel: a raw-sendmsg Python peer (fixtures/cmsg-fuzz-sender.py)
 * sends random control data — SCM_RIGHTS of random pool fds, SCM_CREDENTIALS, messages of other
 * levels, ones the kernel must refuse — and a receiver in its own process
 * (fixtures/cmsg-fuzz-receiver.ts) takes every case through a random receive path with random
 * SO_PASSCRED / SO_PASSPIDFD / SO_TIMESTAMP settings. Asserted per case: no fd invented (every fd names
 * a pool file, pidfds name the sender), exact counts, only documented errors and exactly when due;
 * asserted every 1000 cases and at the end: the receiver's fd table is back at its baseline, and the
 * leak net never had to close an fd nobody closed (no fd unowned).
 *
 * Size: UA_FUZZ_CASES cases in all (default 100000, split over stream, datagram and seqpacket; 3000
 * under qemu-user), seed UA_FUZZ_SEED (default 1). The long run: UA_FUZZ_CASES=1000000 bun test
 * test/cmsg-fuzz.test.ts (docs/testing.md).
 */
import { expect, test } from "bun:test";
import { join } from "node:path";

const EMULATED = process.env.UA_EMULATED === "1";
const TOTAL = Number(process.env.UA_FUZZ_CASES ?? (EMULATED ? 3000 : 100_000));
const SEED = Number(process.env.UA_FUZZ_SEED ?? 1);
const FIXTURE = join(import.meta.dir, "fixtures", "cmsg-fuzz-receiver.ts");
const KINDS = ["stream", "datagram", "seqpacket"] as const;
// generous: ~60 µs a case on an idle 2-vCPU VM, several times that on a loaded one
const TIMEOUT_MS = Math.max(120_000, Math.ceil(TOTAL / KINDS.length) * 3);

for (const [i, kind] of KINDS.entries()) {
  const cases = Math.floor(TOTAL / KINDS.length) + (i < TOTAL % KINDS.length ? 1 : 0);
  test(
    `${kind}: ${cases} random control-message cases through the kernel into every receive path: no fd unowned, none invented, only documented errors${EMULATED ? " (qemu-user: no short low-level control buffers, qemu drops fds from them without MSG_CTRUNC)" : ""}`,
    () => {
      // UNIX_ANCILLARY_DEBUG: the leak net reports every fd it had to close for a dropped OwnedFd — an
      // fd the library left unowned until GC, which the fd-table checks alone could miss
      const env = { ...process.env, UNIX_ANCILLARY_DEBUG: "1" };
      const r = Bun.spawnSync([process.execPath, FIXTURE, String(cases), String(SEED + i), kind], { stdout: "pipe", stderr: "pipe", timeout: TIMEOUT_MS, env });
      const lines = r.stdout.toString().trim().split("\n");
      let result: { ok: boolean; error?: string; cases?: number; sender?: { sent: number }; paths?: Record<string, number>; fdsReturned?: number };
      try {
        result = JSON.parse(lines.at(-1)!);
      } catch {
        throw new Error(`receiver exited ${r.exitCode} without a result: ${r.stdout.toString()} ${r.stderr.toString()}`);
      }
      if (!result.ok) throw new Error(`${result.error} (seed ${SEED + i}; stderr: ${r.stderr.toString().slice(-2000)})`);
      expect(r.exitCode).toBe(0);
      expect(r.stderr.toString()).not.toContain("garbage-collected without close()");
      // the sender refuses a few percent on purpose; the rest all reached a receive path
      expect(result.cases).toBe(result.sender!.sent);
      expect(result.cases!).toBeGreaterThan(cases * 0.9);
      expect(Object.keys(result.paths!).length).toBe(10);
      expect(result.fdsReturned!).toBeGreaterThan(cases);
    },
    TIMEOUT_MS + 10_000,
  );
}
