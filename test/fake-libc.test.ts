/**
 * Runs the fake-libc suites (test/fake-libc/*.suite.ts) once per non-Linux ABI, each in its own Bun
 * process with the test seam pointing at the fake (src/platform/seam.ts, docs/platforms.md): the
 * library's real darwin-x64, darwin-arm64 and freebsd-x64 code paths, on this Linux host.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const dir = join(import.meta.dir, "fake-libc");
const suites = readdirSync(dir).filter((f) => f.endsWith(".suite.ts") && f !== "violation-probe.suite.ts").sort().map((f) => `./test/fake-libc/${f}`);
const emulated = process.env.UA_EMULATED === "1";

// harness.ts registers the violation check (afterEach). Imported by a suite, Bun attaches such a hook
// to that one file (with all suites in one process, every suite after the first ran without the check:
// found when a test that must record a SIGPIPE violation passed there), and a suite that imported it
// without using a binding would not load it at all. So it is preloaded (a preload's hooks apply to
// every test), and each suite file runs in its own process with its own fake kernel and fd table.
const HARNESS = "./test/fake-libc/harness.ts";
describe.each(["darwin-x64", "darwin-arm64", "freebsd-x64"])("%s (fake libc)", (name) => {
  test.each(suites)(
    "%s",
    (suite) => {
      const r = spawnSync(process.execPath, ["test", "--preload", HARNESS, "--timeout", emulated ? "60000" : "20000", suite], {
        cwd: join(import.meta.dir, ".."),
        env: { ...process.env, UA_FAKE_ABI: name, UNIX_ANCILLARY_FAKE_PLATFORM: join(dir, "seam.ts") },
        encoding: "utf8",
        timeout: emulated ? 600_000 : 120_000,
      });
      const out = `${r.stdout}\n${r.stderr}`;
      if (r.status !== 0) console.error(out);
      expect(r.status).toBe(0);
      expect(out).toMatch(/\b0 fail\b/);
    },
    emulated ? 600_000 : 120_000,
  );
});

test("the violation check runs in every suite: a recorded violation fails the suite's test", () => {
  const probe = join(dir, "violation-probe.suite.ts");
  const r = spawnSync(process.execPath, ["test", "--preload", HARNESS, "--timeout", "20000", probe], {
    cwd: join(import.meta.dir, ".."),
    env: { ...process.env, UA_FAKE_ABI: "darwin-x64", UNIX_ANCILLARY_FAKE_PLATFORM: join(dir, "seam.ts"), UA_VIOLATION_PROBE: "1" },
    encoding: "utf8",
    timeout: 120_000,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  expect(r.status).not.toBe(0);
  expect(out).toContain("probe violation");
  expect(out).toMatch(/\b1 fail\b/);
});
