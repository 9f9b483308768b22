/**
 * spawnWithChannel / parentChannel: a child process with a connected fd channel (Node's child.send(msg,
 * handle) for Bun). Checks both kinds, fds in both directions, the parent's copy of the child's end
 * closed on success and on a failed spawn, and the child-side errors.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CHANNEL_ENV, parentChannel, spawnWithChannel, UnixSeqpacket, UnixStream } from "../src/index.ts";
import { K } from "../src/platform/index.ts";
import * as sys from "../src/sys.ts";
import { expectNoFdLeak, fdSnapshot, fdTarget, expectNoNewFds } from "./helpers/fds.ts";

const CHILD = join(import.meta.dir, "fixtures", "channel-child.ts");

describe("spawnWithChannel", () => {
  beforeAll(async () => {
    // start this thread's reactor first, so its own fds are not counted as the tests' (it lives for the file)
    const [a, b] = UnixStream.pair();
    const pending = b.recvFds(0); // has to wait: starts the reactor
    await Bun.sleep(5);
    a.sendFdsSync("x", []);
    (await pending)[Symbol.dispose]();
    a.close();
    b.close();
  });

  for (const kind of ["stream", "seqpacket"] as const) {
    test(`${kind}: the child gets its end with one call; fds travel both ways; nothing leaks`, async () => {
      await expectNoFdLeak(async () => {
        const file = openSync("/etc/hostname", "r");
        try {
          const { process: child, channel } = spawnWithChannel([process.execPath, CHILD], { channel: kind, stdout: "inherit", stderr: "inherit" });
          expect(channel).toBeInstanceOf(kind === "seqpacket" ? UnixSeqpacket : UnixStream);
          await channel.sendFds("hello", [file]);
          using back = await channel.recvFds(4);
          const report = JSON.parse(new TextDecoder().decode(back.data));
          expect(report).toEqual({ envBefore: `3:${kind}`, envAfter: null, kind, text: "hello", fds: 1, second: "ERR_UA_PROTOCOL" });
          // the fd came back from the child: same open file
          expect(back.fds).toHaveLength(1);
          expect(readFileSync(`/proc/self/fd/${back.fds[0]!.fd}`, "utf8")).toBe(readFileSync("/etc/hostname", "utf8"));
          expect(await child.exited).toBe(0);
          channel.close();
        } finally {
          closeSync(file);
        }
      });
    });
  }

  test("the channel goes after the stdio the caller chose (explicit stdio with an extra fd)", async () => {
    const devNull = openSync("/dev/null", "r");
    try {
      const { process: child, channel } = spawnWithChannel(
        [process.execPath, "-e", `console.log(process.env.${CHANNEL_ENV}, require("node:fs").readlinkSync("/proc/self/fd/3"))`],
        { stdio: ["ignore", "pipe", "inherit", devNull] },
      );
      const out = await new Response(child.stdout as ReadableStream).text();
      expect(out.trim()).toBe("4:stream /dev/null");
      expect(await child.exited).toBe(0);
      channel.close();
    } finally {
      closeSync(devNull);
    }
  });

  test("a spawn that fails closes both ends before throwing", () => {
    const snap = fdSnapshot();
    // an option Bun.spawn refuses: it throws synchronously on every platform (a missing executable may
    // only fail in the child under qemu-user)
    expect(() => spawnWithChannel([process.execPath], { stdin: "bogus" as "ignore" })).toThrow(/stdio must be/);
    expectNoNewFds(snap);
  });

  test("argument errors", () => {
    expect(() => spawnWithChannel([] as string[])).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARG_TYPE" }));
    expect(() => spawnWithChannel("bun" as unknown as string[])).toThrow(/The "cmd" argument must be a non-empty array of strings/);
    expect(() => spawnWithChannel([process.execPath], { channel: "dgram" as "stream" })).toThrow(
      expect.objectContaining({ code: "ERR_INVALID_ARG_VALUE", message: expect.stringContaining('must be "stream" or "seqpacket"') }),
    );
  });
});

describe("parentChannel", () => {
  test("without a channel: ERR_UA_PROTOCOL naming the environment variable", () => {
    expect(process.env[CHANNEL_ENV]).toBeUndefined();
    expect(() => parentChannel()).toThrow(expect.objectContaining({ code: "ERR_UA_PROTOCOL", message: expect.stringContaining(CHANNEL_ENV) }));
  });

  test("a malformed variable is refused without touching any fd", () => {
    process.env[CHANNEL_ENV] = "3:dgram";
    try {
      expect(() => parentChannel()).toThrow(/malformed UNIX_ANCILLARY_CHANNEL="3:dgram"/);
    } finally {
      delete process.env[CHANNEL_ENV];
    }
  });

  test("an fd of the wrong kind is refused and closed", () => {
    const [a, n] = sys.socketpair(K.SOCK_DGRAM); // raw numbers: parentChannel takes n over
    process.env[CHANNEL_ENV] = `${n}:stream`;
    try {
      expect(() => parentChannel()).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARG_VALUE" }));
      expect(fdTarget(n)).toBeNull(); // taken and closed
    } finally {
      delete process.env[CHANNEL_ENV];
      sys.closeFd(a);
    }
  });
});
