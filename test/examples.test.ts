/**
 * Runs each example in examples/ as a child Bun process (`bun examples/<name>.ts`) and checks that it
 * exits 0 without stderr output and prints the lines that show the example did its job.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const EXAMPLES = join(import.meta.dir, "..", "examples");

async function runExample(name: string, ...args: string[]) {
  const proc = Bun.spawn([process.execPath, join(EXAMPLES, `${name}.ts`), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    cwd: join(import.meta.dir, ".."),
  });
  const timer = setTimeout(() => proc.kill(), 25_000);
  const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  clearTimeout(timer);
  return { code, signal: proc.signalCode, out, err, lines: out.trim().split("\n") };
}

describe("examples", () => {
  test("every example in examples/ has a test here", async () => {
    const src = await Bun.file(import.meta.path).text();
    for (const f of readdirSync(EXAMPLES).filter((n) => n.endsWith(".ts"))) {
      const name = f.slice(0, -3);
      // handoff-app.ts is the server every handoff-demo generation runs (and test/handoff-reliability.test.ts)
      if (name === "handoff-app") continue;
      // the pool examples run under the pool tests: pool-hello in pool-api.test.ts, pool-supervisor (with
      // pool-app as its worker) through test/helpers/pool-supervisor.ts in every pool-*.test.ts
      if (name === "pool-hello" || name === "pool-supervisor" || name === "pool-app") continue;
      expect(src).toContain(`runExample("${name}"`);
    }
  });

  test("examples import the package by name (unix-ancillary), as a user's code would", () => {
    for (const f of readdirSync(EXAMPLES).filter((n) => n.endsWith(".ts"))) {
      const text = readFileSync(join(EXAMPLES, f), "utf8");
      expect({ f, bad: /from "\.\.\/src\/(index|handoff\/index)\.ts"/.test(text) }).toEqual({ f, bad: false });
    }
  });

  test("async-pass-fd: the fd arrives through an awaited recvFds while the event loop keeps ticking", async () => {
    const r = await runExample("async-pass-fd");
    expect({ code: r.code, signal: r.signal, err: r.err }).toEqual({ code: 0, signal: null, err: "" });
    expect(r.lines).toEqual([
      'received 5 bytes ("async") and 1 fd',
      "file says: Hello from an async fd!",
      "the event loop ticked while waiting",
    ]);
  });

  test("spawn-channel: the child gets its channel with one call, reads the file through the received fd and answers", async () => {
    const r = await runExample("spawn-channel");
    expect({ code: r.code, signal: r.signal, err: r.err }).toEqual({ code: 0, signal: null, err: "" });
    expect(r.lines[0]).toMatch(/^parent: sent 1 fd to child \d+$/);
    expect(r.lines.slice(1)).toEqual(["child read: sent as an fd", "parent: child exited 0"]);
  });

  test("handoff-harness: run directly, it says it is a helper and points at the demo", async () => {
    const r = await runExample("handoff-harness");
    expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: "" });
    expect(r.lines.at(-1)).toBe("Run the demo instead: bun examples/handoff-demo.ts");
  });

  test("handoff-demo (1 handoff): every request under load succeeds, none refused or reset", async () => {
    const r = await runExample("handoff-demo", "1");
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
    expect(r.out).toMatch(/^ +total +\d+ +0 +0 +0 +0 +0$/m); // ok, then refused reset eof timeout badstat
    expect(r.out).toMatch(/^lost requests: 0$/m);
  }, 60_000);

  test("pass-fd: 13 bytes and 1 fd; offset shared at EOF; contents read from position 0", async () => {
    const r = await runExample("pass-fd");
    expect({ code: r.code, signal: r.signal, err: r.err }).toEqual({ code: 0, signal: null, err: "" });
    expect(r.lines).toEqual([
      "received 13 bytes and 1 fd",
      "message: here's a file",
      "read at the shared offset: 0 bytes (the sender left it at end-of-file)",
      "file contents: Hello from the other side!",
    ]);
  });

  test("privsep: the worker serves the privileged side's address from the received listener", async () => {
    const r = await runExample("privsep");
    expect({ code: r.code, signal: r.signal, err: r.err }).toEqual({ code: 0, signal: null, err: "" });
    const bound = /^privileged: bound (127\.0\.0\.1:\d+), sent the listener, closed its own copy$/.exec(r.lines[0]!);
    expect(bound).not.toBeNull();
    if (process.platform === "linux") expect(r.lines).toContainEqual(expect.stringMatching(/^worker: received fd \d+, close-on-exec: true$/));
    expect(r.lines).toContain("worker: serving the received listener without calling bind");
    expect(r.lines.at(-1)).toBe(`client: ${bound![1]} answered "hello from the worker"`);
  });

  test("read-only-capability: reads succeed, the write is refused with EBADF", async () => {
    const r = await runExample("read-only-capability");
    expect({ code: r.code, signal: r.signal, err: r.err }).toEqual({ code: 0, signal: null, err: "" });
    expect(r.lines).toEqual([
      "supervisor: sent a read-only fd for config.txt",
      'sandbox: received "capability" and 1 fd',
      "sandbox: write refused (EBADF)",
      'sandbox: read "answer = 42\\n"',
    ]);
  });

  test("multiprocess: a real child gets marker 'F' and a read-only fd, and acknowledges with 'Y'", async () => {
    const r = await runExample("multiprocess");
    expect({ code: r.code, signal: r.signal, err: r.err }).toEqual({ code: 0, signal: null, err: "" });
    const m = /^parent: child (\d+) connected to .*\/channel\.sock$/.exec(r.lines[0]!);
    expect(m).not.toBeNull();
    expect(r.lines).toContain("parent: sent marker 'F' with a read-only fd");
    expect(r.lines).toContain(`child ${m![1]}: got marker 'F' and an fd; read "shared with the child process\\n"; write refused (EBADF)`);
    expect(r.lines.at(-1)).toBe("parent: child acknowledged with 'Y' and exited 0");
  });

  test("multiprocess: a child that cannot reach the parent exits non-zero", async () => {
    const r = await runExample("multiprocess", "--child", "/nonexistent/unix-ancillary/channel.sock");
    expect(r.code).not.toBe(0);
    expect(r.err).toContain("ENOENT");
  });
});
