/**
 * Proves the harness's violation check is active in a suite file (test/fake-libc.test.ts runs it with
 * UA_VIOLATION_PROBE=1 and expects this test to fail). Without the variable it records nothing.
 */
import { expect, test } from "bun:test";
import { k } from "./harness.ts";

test("a violation recorded by the fake kernel fails the test (probe)", () => {
  if (process.env.UA_VIOLATION_PROBE === "1") k.violation("probe violation");
  expect(true).toBe(true);
});
