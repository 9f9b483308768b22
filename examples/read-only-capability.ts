/**
 * read-only-capability: hand out a file as a capability that can read but not write.
 *
 * A supervisor writes a file, opens it again READ-ONLY, and sends that fd with sendFdsAllSync. The
 * receiving "sandbox" can read the file through it, but a write fails with EBADF: the access mode
 * travels with the open file description, not with the path. (This demo is one process and is not a
 * sandbox by itself: real confinement needs a separate process plus seccomp/landlock or similar. It only
 * shows what the fd grants.)
 *
 * Run: bun examples/read-only-capability.ts
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UnixStream } from "unix-ancillary";

const dir = mkdtempSync(join(tmpdir(), "capability-"));
try {
  const [supervisor, sandbox] = UnixStream.pair();
  using _supervisor = supervisor;
  using _sandbox = sandbox;

  // --- supervisor: writable while preparing, read-only when handing out ----------------------------
  const path = join(dir, "config.txt");
  writeFileSync(path, "answer = 42\n");
  const readOnly = openSync(path, "r");
  supervisor.sendFdsAllSync("capability", [readOnly]);
  closeSync(readOnly);
  console.log("supervisor: sent a read-only fd for config.txt");

  // --- sandbox ---------------------------------------------------------------------------------------
  using received = sandbox.recvFdsExactSync(1);
  const fd = received.fds[0]!.fd;
  console.log(`sandbox: received "${new TextDecoder().decode(received.data)}" and 1 fd`);

  let writeError: string | undefined;
  try {
    writeSync(fd, "answer = 0\n");
  } catch (e) {
    writeError = (e as NodeJS.ErrnoException).code;
  }
  if (writeError === undefined) throw new Error("the write through a read-only capability succeeded");
  console.log(`sandbox: write refused (${writeError})`);

  const buf = new Uint8Array(256);
  const contents = new TextDecoder().decode(buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)));
  console.log(`sandbox: read ${JSON.stringify(contents)}`);
  if (contents !== "answer = 42\n") throw new Error("unexpected contents");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
