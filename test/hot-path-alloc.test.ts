/**
 * The sync hot path allocates no buffers per call: 10,000 "send 1 byte + 1 fd, receive into your
 * buffer, close" round trips create no Uint8Array/ArrayBuffer/DataView/Int32Array/Uint32Array (the
 * msghdr, iovec and control buffers are preallocated and reused). The allocating receive is the
 * positive control: it must show exactly one Uint8Array (the payload copy) per call, proving the
 * measurement sees allocations at all.
 */
import { expect, test } from "bun:test";
import { checkAllocations, BUFFER_TYPES } from "../bench/alloc-check.ts";

test("recvFdsIntoSync round trips allocate no buffers per call and leak nothing", () => {
  const r = checkAllocations({ iterations: 10_000, nfds: 1, variant: "recvFdsIntoSync" });
  expect(r.fdDelta).toBe(0);
  if (!r.gcDuringLoop) {
    for (const t of BUFFER_TYPES) expect({ type: t, allocated: r.allocated[t] }).toEqual({ type: t, allocated: 0 });
  }
  for (const t of BUFFER_TYPES) expect(Math.abs(r.retained[t])).toBeLessThanOrEqual(10);
});

test("positive control: recvFdsSync allocates exactly its payload copy", () => {
  const r = checkAllocations({ iterations: 2_000, nfds: 1, variant: "recvFdsSync" });
  expect(r.fdDelta).toBe(0);
  if (!r.gcDuringLoop) expect(r.allocated.Uint8Array).toBe(2_000);
});
