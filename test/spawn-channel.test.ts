/**
 * spawnWithChannel / channelFromParent: a child with a connected fd channel, Bun.spawn options kept.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { channelFromParent, spawnWithChannel, UnixAncillaryError, UnixSeqpacket, UnixStream } from "../src/index.ts";
import { abi } from "../src/platform/index.ts";
import * as sys from "../src/sys.ts";
import { expectNoFdLeak } from "./helpers/fds.ts";

const CHILD = join(import.meta.dir, "fixtures", "channel-child.ts");
const T = process.env.UA_EMULATED === "1" ? 120_000 : 30_000;

async function exchange(channel: UnixStream | UnixSeqpacket): Promise<Record<string, unknown>> {
  const [r, w] = sys.pipe();
  try {
    await channel.sendFds("f", [w]);
    const reply = await channel.recvFds(0, { bufferSize: 4096 });
    const buf = new Uint8Array(16);
    const n = Number(sys.pollOne(r, 1, 5000)) > 0 ? require("node:fs").readSync(r, buf) : 0;
    return { ...JSON.parse(new TextDecoder().decode(reply.data)), wrote: new TextDecoder().decode(buf.subarray(0, n)) };
  } finally {
    sys.closeFd(r);
    sys.closeFd(w);
  }
}

describe("spawnWithChannel", () => {
  test("the child takes its end with one call; fds pass both ways; Bun.spawn's default stdio is kept (stdout piped)", async () => {
    // No whole-table fd comparison here: Bun's own stdout pipe for the child closes on its own schedule.
    // The claim that matters, that the parent keeps no copy of the child's end, is the EOF below.
    const { child, channel } = spawnWithChannel([process.execPath, CHILD]);
    try {
      expect(channel).toBeInstanceOf(UnixStream);
      const seen = await exchange(channel);
      expect(seen).toEqual({ envFd: "3", channelFd: 3, envGone: true, fd3Open: true, again: "ERR_UA_CLOSED", wrote: "fd ok\n" });
      expect(await child.exited).toBe(0);
      expect(await new Response(child.stdout as ReadableStream).text()).toBe(""); // stdout was a pipe, as Bun.spawn's default
      // The parent holds no copy of the child's end: once the child is gone, the channel reads EOF.
      expect((await channel.recvFds(0)).data.byteLength).toBe(0);
    } finally {
      channel.close();
    }
  }, T);

  test("a stdio array of the caller's keeps its extra fds; the channel goes after them", async () => {
    const [r, w] = sys.pipe();
    const { child, channel } = spawnWithChannel([process.execPath, CHILD], { stdio: ["ignore", "inherit", "inherit", r] });
    try {
      const seen = await exchange(channel);
      expect(seen).toMatchObject({ envFd: "4", channelFd: 4, fd3Open: true, wrote: "fd ok\n" });
      expect(await child.exited).toBe(0);
    } finally {
      channel.close();
      sys.closeFd(r);
      sys.closeFd(w);
    }
  }, T);

  test.skipIf(abi.os === "darwin")("type: \"seqpacket\" gives both sides a UnixSeqpacket (skipped on darwin: no seqpacket)", async () => {
    const { child, channel } = spawnWithChannel([process.execPath, CHILD, "seqpacket"], { stdout: "inherit" }, { type: "seqpacket" });
    try {
      expect(channel).toBeInstanceOf(UnixSeqpacket);
      expect(await exchange(channel)).toMatchObject({ channelFd: 3, wrote: "fd ok\n" });
      expect(await child.exited).toBe(0);
    } finally {
      channel.close();
    }
  }, T);

  test("a command that cannot start: Bun.spawn's error, and both ends are closed (under qemu-user: a failed child)", async () => {
    await expectNoFdLeak(async () => {
      let started: { child: { exited: Promise<number> }; channel: UnixStream } | null = null;
      try {
        // stdout "ignore": a piped stdout of a child that did start (qemu-user) stays open in this
        // process until Bun drains it, which would be counted here as a leak of ours.
        started = spawnWithChannel(["/nonexistent/unix-ancillary-binary"], { stdout: "ignore" });
      } catch {
        // the normal case: Bun.spawn throws ENOENT
      }
      if (process.env.UA_EMULATED !== "1") expect(started).toBeNull();
      if (started) {
        // qemu-user's binfmt exec reports the failure through the child's exit status instead
        expect(await started.child.exited).not.toBe(0);
        started.channel.close();
      }
    });
  }, T);

  test("channelFromParent() outside such a child: ERR_UA_CLOSED saying how to start it", () => {
    delete process.env.UA_CHANNEL_FD;
    let e: unknown;
    try {
      channelFromParent();
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(UnixAncillaryError);
    expect((e as UnixAncillaryError).code).toBe("ERR_UA_CLOSED");
    expect((e as Error).message).toContain("start this process with spawnWithChannel");
  });
});
