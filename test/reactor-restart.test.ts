/**
 * shutdownReactor() followed by a later wait restarts the reactor Worker on the same poll set, and
 * shutdown really wakes and stops it, every time, also when the GC ran in between (the wake/drain
 * buffers must stay reachable from the backend, not only by address). Runs in a child process
 * (test/fixtures/reactor-restart.ts) so a hang or a crash fails this test instead of the runner; the
 * child reports the threads and the eventfd/epoll fdinfo if a step outlives its deadline.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";

const CHILD = join(import.meta.dir, "fixtures", "reactor-restart.ts");
const EMULATED = process.env.UA_EMULATED === "1";
const CYCLES = EMULATED ? 8 : 30;
const STEP_MS = EMULATED ? 60_000 : 20_000;

test(`${CYCLES} shutdownReactor/restart cycles with a full GC before each shutdown: every wait resolves and every shutdown completes`, async () => {
  const child = Bun.spawn([process.execPath, CHILD, String(CYCLES), String(STEP_MS)], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  const last = out.trim().split("\n").at(-1) ?? "";
  if (code !== 0 || last !== "ok") throw new Error(`child exited ${code} (signal ${child.signalCode ?? "none"}): ${last}\n${err}`);
  expect(last).toBe("ok");
}, EMULATED ? 900_000 : 120_000);
