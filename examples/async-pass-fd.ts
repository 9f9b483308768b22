/**
 * async-pass-fd: the pass-fd flow on Bun's event loop. The receiver awaits `recvFds` (the event loop
 * keeps running: a timer ticks while it waits), the sender writes a temp file and sends it with
 * `sendFds`. The received OwnedFd shares the sender's open file description, so its offset is at EOF:
 * read with an explicit position.
 *
 *   bun examples/async-pass-fd.ts
 */
import { UnixStream } from "unix-ancillary";
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "ua-async-pass-fd-"));
try {
  const path = join(dir, "greeting.txt");
  writeFileSync(path, "Hello from an async fd!");
  const file = openSync(path, "r");

  const [sender, receiver] = UnixStream.pair();
  using _s = sender;
  using _r = receiver;

  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const pending = receiver.recvFds(1); // waits without blocking the event loop
  setTimeout(() => sender.sendFds("async", [file]), 20);

  using msg = await pending;
  clearInterval(timer);
  closeSync(file); // the sent fd stayed ours; the receiver has its own
  const buf = new Uint8Array(64);
  const n = readSync(msg.fds[0]!.fd, buf, 0, buf.length, 0);
  console.log(`received ${msg.data.length} bytes ("${new TextDecoder().decode(msg.data)}") and ${msg.fds.length} fd`);
  console.log(`file says: ${new TextDecoder().decode(buf.subarray(0, n))}`);
  console.log(`the event loop ticked ${ticks > 0 ? "while waiting" : "NOT AT ALL (bug)"}`);
  if (ticks === 0 || new TextDecoder().decode(buf.subarray(0, n)) !== "Hello from an async fd!") process.exit(1);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
