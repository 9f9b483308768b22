/**
 * Debug mode (UNIX_ANCILLARY_DEBUG): an OwnedFd collected without close() is closed by the leak net and a
 * process warning (code UA_FD_LEAKED) names the line that created it. Runs in a child process: it depends
 * on the GC and must not disturb this process's fd table.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";

const FIXTURE = join(import.meta.dir, "fixtures", "leak-debug.ts");

async function run(env: Record<string, string | undefined>): Promise<{ code: unknown; message: string }[]> {
  const child = Bun.spawn([process.execPath, FIXTURE], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const [out] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  expect(await child.exited).toBe(0);
  return JSON.parse(out.trim());
}

test("with UNIX_ANCILLARY_DEBUG set, a leaked OwnedFd's warning names its creation site", async () => {
  const warnings = await run({ UNIX_ANCILLARY_DEBUG: "1" });
  expect(warnings.length).toBeGreaterThan(0);
  for (const w of warnings) {
    expect(w.code).toBe("UA_FD_LEAKED");
    expect(w.message).toMatch(/^fd \d+ was garbage-collected without close\(\); closed it now\. It was created at:\n/);
    expect(w.message).toContain("recvFdsSync");
    expect(w.message).toMatch(/leak-debug\.ts:13:/); // the line marked THE-LEAK-SITE in the fixture
  }
});

test("without it, the leak net closes silently", async () => {
  expect(await run({ UNIX_ANCILLARY_DEBUG: undefined })).toEqual([]);
});
