/** Adversarial review: listenFds() can create two owners for one inherited fd. Fails on the reviewed tree. */
import { expect, test } from "bun:test";
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";

test("listenFds({ unsetEnvironment: false }) called twice gives one owner per fd: closing both results never closes a reused number", async () => {
  const devNull = openSync("/dev/null", "r");
  try {
    const child = Bun.spawn([process.execPath, join(import.meta.dir, "fixtures", "review-listenfds-twice.ts")], {
      env: { ...process.env, LISTEN_FDS: "1" },
      stdio: ["ignore", "pipe", "inherit", devNull],
    });
    const out = JSON.parse((await new Response(child.stdout).text()).trim());
    expect(await child.exited).toBe(0);
    // A second call must either return the same owners, refuse, or return nothing — never a second owner.
    expect(out.stillOpen).toBe(true);
  } finally {
    closeSync(devNull);
  }
});
