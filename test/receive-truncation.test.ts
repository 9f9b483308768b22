/**
 * Truncated receives (MSG_CTRUNC): when the kernel cannot install every fd of a message (here: a full fd
 * table), every high-level receive closes the fds that did arrive and throws ERR_UA_ANCILLARY_TRUNCATED —
 * with `bytesRead` (and, for the allocating receives, a copy of the bytes as `data`), because the payload
 * was consumed: a stream protocol needs it to resynchronise. Runs in a child process with a low
 * RLIMIT_NOFILE, which also counts its own fd table.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";

const FIXTURE = join(import.meta.dir, "fixtures", "receive-truncated.ts");

type Result = { path: string; code?: string; bytesRead?: number; data?: string; into?: string; leaked: number };

test("every high-level receive on every socket type: MSG_CTRUNC throws with bytesRead and the data, fds closed", () => {
  const r = Bun.spawnSync(["sh", "-c", 'ulimit -n 96 && exec "$0" "$1"', process.execPath, FIXTURE], { stdout: "pipe", stderr: "pipe", timeout: 60_000 });
  const out = r.stdout.toString();
  if (r.exitCode !== 0) throw new Error(`fixture failed (${r.exitCode}): ${r.stderr.toString()}`);
  const results = JSON.parse(out.trim().split("\n").at(-1)!) as Result[];
  expect(results.length).toBe(18);
  for (const res of results) {
    const allocating = !res.path.includes("Into") && !res.path.includes("Vectored");
    expect({ path: res.path, code: res.code, bytesRead: res.bytesRead, leaked: res.leaked }).toEqual({ path: res.path, code: "ERR_UA_ANCILLARY_TRUNCATED", bytesRead: 11, leaked: 0 });
    if (allocating) expect({ path: res.path, data: res.data }).toEqual({ path: res.path, data: "hello world" });
    else expect({ path: res.path, into: res.into }).toEqual({ path: res.path, into: "hello world" });
  }
});
