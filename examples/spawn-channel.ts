/**
 * spawn-channel: a parent and a child with a connected fd channel, Bun's equivalent of Node's
 * `child.send(message, handle)`. The parent spawns this same file with spawnWithChannel (its usual
 * Bun.spawn options unchanged) and sends an open file over the channel; the child takes its end with
 * channelFromParent(), reads the file through the received fd and answers.
 *
 *   bun examples/spawn-channel.ts
 */
import { channelFromParent, spawnWithChannel } from "unix-ancillary";
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

if (process.argv[2] === "--child") {
  using channel = channelFromParent();
  using msg = await channel.recvFdsExact(1);
  const buf = new Uint8Array(64);
  const n = readSync(msg.fds[0]!.fd, buf, 0, buf.length, 0);
  await channel.sendFds(`child read: ${new TextDecoder().decode(buf.subarray(0, n))}`);
} else {
  const dir = mkdtempSync(join(tmpdir(), "ua-spawn-channel-"));
  try {
    const path = join(dir, "note.txt");
    writeFileSync(path, "sent as an fd");
    const file = openSync(path, "r");
    const { child, channel } = spawnWithChannel([process.execPath, import.meta.path, "--child"], { stdout: "inherit" });
    using _c = channel;
    await channel.sendFds("file", [file]);
    closeSync(file); // the child has its own fd for the file now
    using reply = await channel.recvFds(0);
    console.log(`parent: sent 1 fd to child ${child.pid}`);
    console.log(new TextDecoder().decode(reply.data));
    console.log(`parent: child exited ${await child.exited}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
