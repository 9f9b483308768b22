/**
 * A non-retrying HTTP/1.1 load generator on raw node:net sockets, for the handoff tests, demo and
 * bench. Unlike Bun's fetch it never resends a request: a keep-alive connection that closes before
 * the response arrives is counted as a lost request, exactly as a reverse proxy's upstream pool or a
 * POST-sending client would experience it.
 *
 * Workers:
 *   - "keepalive": one connection reused for back-to-back requests (pipelining off); a response with
 *     `Connection: close` makes the worker open a new connection for its next request.
 *   - "fresh": a new connection per request, sent with `Connection: close`.
 * Requests alternate GET and POST (with a small body) unless `methods` says otherwise.
 *
 * Every request ends in exactly one outcome: ok | refused | reset | eof (closed before a complete
 * response) | timeout | badStatus. `x-server` style tag headers are counted per value; for every new
 * connection the wall-clock time of its connect() call and the tag of its first response are kept,
 * so a test can check that no connection opened after a commit was served by the old process.
 */
import * as net from "node:net";

export type Outcome = "ok" | "refused" | "reset" | "eof" | "timeout" | "badStatus";
export const OUTCOMES: readonly Outcome[] = ["ok", "refused", "reset", "eof", "timeout", "badStatus"];

export interface HttpLoadOptions {
  host?: string;
  port: number;
  path?: string;
  /** Keep-alive workers (default 0). */
  keepalive?: number;
  /** New-connection workers (default 0). */
  fresh?: number;
  /** Methods cycled by each worker (default ["GET", "POST"]). */
  methods?: Array<"GET" | "POST">;
  /** POST body size in bytes (default 64). */
  bodyBytes?: number;
  /** Per-request limit (default 5000 ms). */
  requestTimeoutMs?: number;
  /** Response header counted per value in `byTag` (default "x-server"). */
  tagHeader?: string;
  /** Stop by itself after this long. */
  durationMs?: number;
  /** Keep per-connection records (connect time + first tag) for accept-after-commit checks (default false). */
  recordConnections?: boolean;
  /** Pause between a worker's requests (default 0). */
  pauseMs?: number;
}

export interface ConnectionRecord {
  /** Wall-clock ms (performance.timeOrigin + performance.now()) when connect() was called. */
  connectAt: number;
  /** Tag of the first response on this connection. */
  tag: string;
}

export interface HttpLoadReport {
  counts: Record<Outcome, number>;
  /** Requests that did not end ok. */
  lost: number;
  byTag: Record<string, number>;
  /** Example error messages per outcome (first few). */
  samples: Partial<Record<Outcome, string[]>>;
  elapsedMs: number;
  /** ok responses per second. */
  rps: number;
}

const wallNow = () => performance.timeOrigin + performance.now();

interface Parsed {
  status: number;
  close: boolean;
  tag: string | null;
  total: number; // bytes of the complete response, or -1 if incomplete
}

/** Parses one response at the start of `buf` (content-length or chunked). Returns null if incomplete. */
function parseResponse(buf: Buffer, tagHeader: string): Parsed | null {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const head = buf.subarray(0, end).toString("latin1");
  const lines = head.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!);
  const status = m ? Number(m[1]) : 0;
  let length = -1;
  let chunked = false;
  let close = lines[0]!.startsWith("HTTP/1.0");
  let tag: string | null = null;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const c = line.indexOf(":");
    if (c < 0) continue;
    const k = line.slice(0, c).trim().toLowerCase();
    const v = line.slice(c + 1).trim();
    if (k === "content-length") length = Number(v);
    else if (k === "transfer-encoding" && /chunked/i.test(v)) chunked = true;
    else if (k === "connection") close = /close/i.test(v);
    else if (k === tagHeader) tag = v;
  }
  let pos = end + 4;
  if (chunked) {
    for (;;) {
      const le = buf.indexOf("\r\n", pos);
      if (le < 0) return null;
      const size = parseInt(buf.subarray(pos, le).toString("latin1"), 16);
      pos = le + 2 + size + 2;
      if (pos > buf.length) return null;
      if (size === 0) break;
    }
  } else if (length >= 0) {
    pos += length;
    if (pos > buf.length) return null;
  } else if (status !== 204 && status !== 304) {
    return null; // body until close: not produced by the servers under test
  }
  return { status, close, tag, total: pos };
}

class Conn {
  readonly sock: net.Socket;
  buf: Buffer = Buffer.alloc(0);
  closed = false;
  error: NodeJS.ErrnoException | null = null;
  connected = false;
  first = true;
  readonly record: ConnectionRecord | null;
  #wake: (() => void) | null = null;

  constructor(host: string, port: number, record: boolean) {
    this.record = record ? { connectAt: wallNow(), tag: "" } : null;
    this.sock = net.connect({ host, port, noDelay: true });
    this.sock.on("connect", () => {
      this.connected = true;
      this.#poke();
    });
    this.sock.on("data", (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      this.#poke();
    });
    this.sock.on("error", (e) => {
      this.error ??= e;
      this.#poke();
    });
    this.sock.on("close", () => {
      this.closed = true;
      this.#poke();
    });
    this.sock.on("end", () => {
      this.closed = true;
      this.#poke();
    });
  }

  #poke(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  wait(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.#wake = null;
        resolve(false);
      }, ms);
      this.#wake = () => {
        clearTimeout(t);
        resolve(true);
      };
    });
  }

  destroy(): void {
    this.closed = true;
    this.sock.destroy();
  }
}

function classify(e: NodeJS.ErrnoException | null): Outcome {
  const code = e?.code ?? "";
  if (code === "ECONNREFUSED") return "refused";
  if (code === "ECONNRESET" || code === "EPIPE") return "reset";
  if (code === "ETIMEDOUT") return "timeout";
  return e ? "reset" : "eof";
}

export class HttpLoad {
  readonly counts: Record<Outcome, number> = { ok: 0, refused: 0, reset: 0, eof: 0, timeout: 0, badStatus: 0 };
  readonly byTag: Record<string, number> = {};
  readonly connections: ConnectionRecord[] = [];
  readonly samples: Partial<Record<Outcome, string[]>> = {};
  readonly #opts: Required<Omit<HttpLoadOptions, "durationMs">> & { durationMs?: number };
  readonly #started = performance.now();
  readonly #workers: Promise<void>[] = [];
  #stopped = false;
  readonly #body: string;

  constructor(opts: HttpLoadOptions) {
    this.#opts = { host: "127.0.0.1", path: "/", keepalive: 0, fresh: 0, methods: ["GET", "POST"], bodyBytes: 64, requestTimeoutMs: 5000, tagHeader: "x-server", recordConnections: false, pauseMs: 0, ...opts };
    this.#body = "x".repeat(this.#opts.bodyBytes);
    for (let i = 0; i < this.#opts.keepalive; i++) this.#workers.push(this.#worker(true, i));
    for (let i = 0; i < this.#opts.fresh; i++) this.#workers.push(this.#worker(false, i));
  }

  #request(method: string, close: boolean): Buffer {
    const { host, port, path } = this.#opts;
    const hdr = `${method} ${path} HTTP/1.1\r\nhost: ${host}:${port}\r\n${close ? "connection: close\r\n" : ""}`;
    if (method === "POST") return Buffer.from(`${hdr}content-type: text/plain\r\ncontent-length: ${this.#body.length}\r\n\r\n${this.#body}`);
    return Buffer.from(`${hdr}\r\n`);
  }

  #count(o: Outcome, detail?: string): void {
    this.counts[o]++;
    if (o !== "ok" && detail) {
      const s = (this.samples[o] ??= []);
      if (s.length < 5) s.push(detail);
    }
  }

  /** One request on `c` (connecting first if needed). Returns whether the connection can be reused. */
  async #one(c: Conn, method: string, close: boolean): Promise<boolean> {
    const deadline = performance.now() + this.#opts.requestTimeoutMs;
    if (!c.closed && c.error === null) c.sock.write(this.#request(method, close));
    for (;;) {
      const r = c.buf.length ? parseResponse(c.buf, this.#opts.tagHeader) : null;
      if (r) {
        c.buf = c.buf.subarray(r.total);
        const tag = r.tag ?? "?";
        if (c.first && c.record) {
          c.record.tag = tag;
          this.connections.push(c.record);
        }
        c.first = false;
        if (r.status >= 200 && r.status < 400) {
          this.#count("ok");
          this.byTag[tag] = (this.byTag[tag] ?? 0) + 1;
        } else this.#count("badStatus", `HTTP ${r.status} from ${tag}`);
        return !r.close && !close;
      }
      if (c.error || c.closed) {
        const o = c.connected ? classify(c.error) : c.error?.code === "ECONNREFUSED" ? "refused" : classify(c.error);
        this.#count(o, `${method} ${c.first ? "first" : "reused"} connection: ${c.error?.code ?? "closed"} after ${c.buf.length} response bytes`);
        return false;
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        this.#count("timeout", `${method} ${c.first ? "first" : "reused"} connection`);
        return false;
      }
      await c.wait(left);
    }
  }

  async #worker(keepalive: boolean, index: number): Promise<void> {
    const { host, port, methods, durationMs, pauseMs, recordConnections } = this.#opts;
    const end = durationMs === undefined ? Infinity : this.#started + durationMs;
    let c: Conn | null = null;
    let n = index;
    while (!this.#stopped && performance.now() < end) {
      c ??= new Conn(host, port, recordConnections);
      const reuse = await this.#one(c, methods[n++ % methods.length]!, !keepalive);
      if (!reuse) {
        c.destroy();
        c = null;
      }
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
    c?.destroy();
  }

  get lost(): number {
    return this.counts.refused + this.counts.reset + this.counts.eof + this.counts.timeout + this.counts.badStatus;
  }

  snapshot(): HttpLoadReport {
    const elapsedMs = performance.now() - this.#started;
    return { counts: { ...this.counts }, lost: this.lost, byTag: { ...this.byTag }, samples: structuredClone(this.samples), elapsedMs, rps: (this.counts.ok * 1000) / Math.max(1, elapsedMs) };
  }

  /** Stops the workers (each finishes its current request) and returns the totals. */
  async stop(): Promise<HttpLoadReport> {
    this.#stopped = true;
    await Promise.all(this.#workers);
    return this.snapshot();
  }

  /** Waits for durationMs to pass and every worker to finish. */
  async done(): Promise<HttpLoadReport> {
    await Promise.all(this.#workers);
    return this.snapshot();
  }
}

export function httpLoad(opts: HttpLoadOptions): HttpLoad {
  return new HttpLoad(opts);
}

/** Requests of one window: b - a. */
export function diffLoad(a: HttpLoadReport, b: HttpLoadReport): HttpLoadReport {
  const counts = { ...b.counts };
  for (const k of OUTCOMES) counts[k] -= a.counts[k];
  const byTag: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.byTag)) if (v - (a.byTag[k] ?? 0) > 0) byTag[k] = v - (a.byTag[k] ?? 0);
  const elapsedMs = b.elapsedMs - a.elapsedMs;
  const lost = b.lost - a.lost;
  return { counts, lost, byTag, samples: b.samples, elapsedMs, rps: (counts.ok * 1000) / Math.max(1, elapsedMs) };
}

/** "ok 123, lost 0 (refused 0, reset 0, eof 0, timeout 0, badStatus 0)" */
export function formatLoad(r: HttpLoadReport): string {
  return `ok ${r.counts.ok}, lost ${r.lost} (refused ${r.counts.refused}, reset ${r.counts.reset}, eof ${r.counts.eof}, timeout ${r.counts.timeout}, badStatus ${r.counts.badStatus})`;
}
