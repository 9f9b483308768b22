/**
 * A fetch-based loopback HTTP load generator. Bun's fetch silently retries a reused connection that
 * closes before a response, so it hides keep-alive losses: acceptance numbers come from the
 * non-retrying client in http-load.ts. N concurrent clients, each sending requests back to back, either on a fresh connection per request
 * (`Connection: close`) or on keep-alive connections, counting successes and every failure by kind
 * (refused, reset, timeout, HTTP status). Bounded: it stops at `durationMs` or stop().
 */
export interface LoadOptions {
  url: string;
  /** Concurrent clients (default 8). */
  concurrency?: number;
  /** "fresh": a new TCP connection per request; "keepalive": reuse connections (default "fresh"). */
  mode?: "fresh" | "keepalive";
  /** Stop after this long (default: until stop()). */
  durationMs?: number;
  /** Per-request time limit (default 5000 ms). */
  requestTimeoutMs?: number;
  /** Response header whose value identifies the serving process (counted in `byServer`). */
  tagHeader?: string;
}

export interface LoadReport {
  ok: number;
  failed: number;
  /** Failures by kind: ECONNREFUSED, ECONNRESET, TIMEOUT, HTTP_<status>, or the error code/message. */
  errors: Record<string, number>;
  byServer: Record<string, number>;
  elapsedMs: number;
  /** Successful requests per second. */
  rps: number;
}

function classify(e: unknown): string {
  const err = e as { code?: string; name?: string; message?: string };
  const code = err?.code ?? err?.name ?? "";
  if (/refused/i.test(code) || /refused/i.test(err?.message ?? "")) return "ECONNREFUSED";
  if (/reset|ConnectionClosed|closed/i.test(code) || /reset|socket connection was closed/i.test(err?.message ?? "")) return "ECONNRESET";
  if (/abort|timeout/i.test(code)) return "TIMEOUT";
  return code || String(err?.message ?? e).slice(0, 60);
}

export class LoadRun {
  ok = 0;
  failed = 0;
  readonly errors: Record<string, number> = {};
  readonly byServer: Record<string, number> = {};
  readonly #started = performance.now();
  #stopped = false;
  readonly #clients: Promise<void>[];
  readonly #opts: Required<Omit<LoadOptions, "durationMs" | "tagHeader">> & Pick<LoadOptions, "durationMs" | "tagHeader">;

  constructor(opts: LoadOptions) {
    this.#opts = { concurrency: 8, mode: "fresh", requestTimeoutMs: 5000, ...opts };
    this.#clients = Array.from({ length: this.#opts.concurrency }, () => this.#client());
  }

  async #client(): Promise<void> {
    const { url, mode, requestTimeoutMs, durationMs, tagHeader } = this.#opts;
    const end = durationMs === undefined ? Infinity : this.#started + durationMs;
    while (!this.#stopped && performance.now() < end) {
      const ctl = new AbortController();
      const t = setTimeout(() => ctl.abort(), requestTimeoutMs);
      try {
        const res = await fetch(url, {
          signal: ctl.signal,
          ...(mode === "fresh" ? { headers: { connection: "close" }, keepalive: false } : {}),
        } as RequestInit);
        await res.arrayBuffer();
        if (res.status >= 200 && res.status < 400) {
          this.ok++;
          if (tagHeader) {
            const tag = res.headers.get(tagHeader) ?? "?";
            this.byServer[tag] = (this.byServer[tag] ?? 0) + 1;
          }
        } else this.#fail(`HTTP_${res.status}`);
      } catch (e) {
        this.#fail(classify(e));
      } finally {
        clearTimeout(t);
      }
    }
  }

  #fail(kind: string): void {
    this.failed++;
    this.errors[kind] = (this.errors[kind] ?? 0) + 1;
  }

  /** Counts so far (a copy). */
  snapshot(): LoadReport {
    const elapsedMs = performance.now() - this.#started;
    return { ok: this.ok, failed: this.failed, errors: { ...this.errors }, byServer: { ...this.byServer }, elapsedMs, rps: (this.ok * 1000) / Math.max(1, elapsedMs) };
  }

  /** Stops the clients (in-flight requests finish) and returns the totals. */
  async stop(): Promise<LoadReport> {
    this.#stopped = true;
    await Promise.all(this.#clients);
    return this.snapshot();
  }

  /** Resolves when durationMs has passed and every client finished. */
  async done(): Promise<LoadReport> {
    await Promise.all(this.#clients);
    return this.snapshot();
  }
}

/** Starts a load run at once. */
export function runLoad(opts: LoadOptions): LoadRun {
  return new LoadRun(opts);
}

/** Difference of two snapshots (the requests of one window). */
export function diffReport(a: LoadReport, b: LoadReport): LoadReport {
  const errors: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.errors)) if (v - (a.errors[k] ?? 0) > 0) errors[k] = v - (a.errors[k] ?? 0);
  const byServer: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.byServer)) if (v - (a.byServer[k] ?? 0) > 0) byServer[k] = v - (a.byServer[k] ?? 0);
  const elapsedMs = b.elapsedMs - a.elapsedMs;
  const ok = b.ok - a.ok;
  return { ok, failed: b.failed - a.failed, errors, byServer, elapsedMs, rps: (ok * 1000) / Math.max(1, elapsedMs) };
}
