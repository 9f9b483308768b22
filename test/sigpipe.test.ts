/**
 * Crate fd_passing case 10 (send_to_closed_peer_returns_error_without_sigpipe), adapted: each case runs
 * in a child Bun process (test/fixtures/child-sigpipe.ts) that resets SIGPIPE to SIG_DFL first — Bun
 * ignores SIGPIPE, which would mask a send without MSG_NOSIGNAL. The child must report EPIPE and exit 0;
 * a death by SIGPIPE fails the assertion on exitCode/signalCode. A control case proves the setup is
 * live: a plain send(2) without MSG_NOSIGNAL does kill the child.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { UnixStream } from "../src/index.ts";

const CHILD = join(import.meta.dir, "fixtures", "child-sigpipe.ts");

async function run(mode: string, extra?: UnixStream, during?: () => void) {
  const proc = Bun.spawn([process.execPath, CHILD, mode], {
    stdio: ["ignore", "pipe", "pipe", ...(extra ? [extra.fd] : [])],
  });
  extra?.close();
  try {
    during?.();
  } catch (e) {
    proc.kill();
    throw e;
  }
  const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code, signal: proc.signalCode, out: out.trim(), err };
}

describe("SIGPIPE: sends to a closed peer fail with EPIPE and never kill the process", () => {
  test("control: with SIG_DFL restored, a plain send(2) without MSG_NOSIGNAL kills the child", async () => {
    const r = await run("raw-control");
    expect(r.signal).toBe("SIGPIPE");
    expect(r.out).toBe("");
  });

  for (const [mode, what] of [
    ["send-fds", "sendFdsSync"],
    ["send-vectored", "sendFdsVectoredSync"],
    ["send-all-fds", "sendFdsAllSync with fds (first sendmsg)"],
    ["send-all-nofds", "sendFdsAllSync without fds (control-less completion loop)"],
  ] as const) {
    test(`${what}: SystemError EPIPE, child exits 0`, async () => {
      const r = await run(mode);
      expect({ code: r.code, signal: r.signal, err: r.err }).toEqual({ code: 0, signal: null, err: "" });
      const report = JSON.parse(r.out);
      // Bun starts with SIGPIPE ignored; the child really ran with SIG_DFL.
      expect(report.ignoredAfter).toBe(false);
      expect(report).toMatchObject({ mode, threw: true, name: "SystemError", code: "EPIPE", errno: 32, syscall: "sendmsg" });
    });
  }

  test("sendFdsAllSync tail: the fd rides the first sendmsg, the peer closes mid-transfer, the tail sendmsg fails without a signal", async () => {
    const [parentEnd, childEnd] = UnixStream.pair();
    let firstBytes = 0;
    let firstFds = 0;
    const r = await run("send-all-tail", childEnd, () => {
      // Blocks until the child's first (fd-carrying) sendmsg has delivered something.
      using first = parentEnd.recvFdsSync(1);
      firstBytes = first.data.length;
      firstFds = first.fds.length;
      parentEnd.close(); // the child is still inside its 4 MiB send
    });
    // The first sendmsg delivered bytes, so it returned > 0 and the error came from the tail loop.
    expect(firstBytes).toBeGreaterThan(0);
    expect(firstFds).toBe(1);
    expect({ code: r.code, signal: r.signal, err: r.err }).toEqual({ code: 0, signal: null, err: "" });
    const report = JSON.parse(r.out);
    expect(report.ignoredAfter).toBe(false);
    expect(report).toMatchObject({ mode: "send-all-tail", threw: true, name: "SystemError", syscall: "sendmsg" });
    // Closing with unread data makes Linux report ECONNRESET to the in-flight call; the tail then sees EPIPE.
    expect(["EPIPE", "ECONNRESET"]).toContain(report.code);
  });
});
