/**
 * Numeric option checks for the handoff API, worded and coded like Node's (ERR_INVALID_ARG_TYPE for a
 * non-number, ERR_OUT_OF_RANGE for a fraction, NaN or a value outside the range).
 */
import { invalidArgType, invalidArgValue, outOfRange } from "../errors.ts";

function describe(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return `type ${typeof v} (${String(v)})`;
  if (typeof v === "string") return `type string (${JSON.stringify(v.slice(0, 40))})`;
  return typeof v === "object" ? "an instance of " + ((v as object).constructor?.name ?? "Object") : `type ${typeof v}`;
}

/** An integer in [min, max], or `fallback` when undefined. */
export function intOption(name: string, v: unknown, min: number, max: number, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number") throw invalidArgType(name, "of type number", describe(v));
  if (!Number.isInteger(v)) throw outOfRange(name, "an integer", String(v));
  if (v < min || v > max) throw outOfRange(name, `>= ${min} && <= ${max}`, String(v));
  return v;
}

/** A finite number in [min, max] (fractions allowed), or `fallback` when undefined. */
export function numberOption(name: string, v: unknown, min: number, max: number, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number") throw invalidArgType(name, "of type number", describe(v));
  if (!(v >= min && v <= max)) throw outOfRange(name, `>= ${min} && <= ${max}`, String(v));
  return v;
}

export function oneOf<T extends string>(name: string, v: unknown, allowed: readonly T[], fallback: T): T {
  if (v === undefined) return fallback;
  if (typeof v !== "string" || !allowed.includes(v as T)) throw invalidArgValue(name, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}. Received ${describe(v)}`);
  return v as T;
}

/** Longest timer the runtime honours (2^31-1 ms). */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;
