/**
 * The socket layer's door to the reactor (reactor.ts), which loads on the first wait: its module
 * graph (the Worker's source, both backends, the thread-lifetime anchor) is about a tenth of the
 * library and most imports never wait (bench/startup.ts measures it). Owns no fd.
 */
import { runCloseHook } from "../sys.ts";
import type { Interest } from "./reactor.ts";

type ReactorModule = typeof import("./reactor.ts");

let reactor: ReactorModule | null = null;

/** reactor.ts's waitFor, loading the reactor on first use (a static require: bundlers see it). */
export function waitFor(fd: number, interest: Interest, signal?: AbortSignal): Promise<void> {
  return (reactor ??= require("./reactor.ts") as ReactorModule).waitFor(fd, interest, signal);
}

/**
 * reactor.ts's forget, through the close hook the reactor installs when it starts (whoever loaded
 * it): before any wait there is nothing to forget.
 */
export function forget(fd: number): void {
  runCloseHook(fd);
}
