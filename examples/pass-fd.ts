/**
 * pass-fd: the basic move. Open a file, send its fd over a Unix socketpair together with a message,
 * receive it on the other end as an OwnedFd, and read the file through it.
 *
 * The received fd shares the sender's open file description, including its offset: the sender wrote
 * through the same description, so the offset sits at end-of-file and a plain read returns nothing
 * until we read from position 0 (pread), the equivalent of the crate example's seek to 0.
 *
 * Run: bun examples/pass-fd.ts
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UnixStream } from "unix-ancillary";

const dir = mkdtempSync(join(tmpdir(), "pass-fd-"));
try {
  const [sender, receiver] = UnixStream.pair();
  using _sender = sender;
  using _receiver = receiver;

  // The sender's file: written through the same fd it is about to send.
  const file = openSync(join(dir, "message.txt"), "w+");
  writeSync(file, "Hello from the other side!");

  sender.sendFdsSync("here's a file", [file]);
  closeSync(file); // the receiver's copy keeps the file open

  using received = receiver.recvFdsSync(1);
  console.log(`received ${received.data.length} bytes and ${received.fds.length} fd`);
  console.log(`message: ${new TextDecoder().decode(received.data)}`);
  const fd = received.fds[0];
  if (fd === undefined) throw new Error("no fd arrived");

  const buf = new Uint8Array(256);
  const atOffset = readSync(fd.fd, buf, 0, buf.length, null);
  console.log(`read at the shared offset: ${atOffset} bytes (the sender left it at end-of-file)`);
  const n = readSync(fd.fd, buf, 0, buf.length, 0);
  const contents = new TextDecoder().decode(buf.subarray(0, n));
  console.log(`file contents: ${contents}`);
  if (contents !== "Hello from the other side!") throw new Error(`unexpected contents: ${contents}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
