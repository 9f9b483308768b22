/**
 * multiprocess: fd passing across a real process boundary.
 *
 * The parent binds a UnixListener in a private temp directory (mode 0600), writes a file, opens it
 * read-only, and starts a copy of this script as a child with `--child <socket path>`. The child
 * connects and says so over Bun's IPC channel; only then does the parent accept (so accept never waits
 * on a child that died). The parent sends the marker "F" with the fd (sendFdsAllSync). The child
 * receives exactly one fd into a 1-byte marker buffer (recvFdsExactIntoSync), requires the marker 'F',
 * reads the file, proves that a write fails, and replies 'Y'. The parent kills the child on any error
 * or after a 10 s deadline, and succeeds only if the child exited 0 and replied 'Y'.
 *
 * Run: bun examples/multiprocess.ts
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UnixListener, UnixStream } from "unix-ancillary";

const CONTENTS = "shared with the child process\n";

if (process.argv[2] === "--child") {
  process.exitCode = child(process.argv[3]!);
  process.exit();
} else {
  process.exitCode = await parent();
}

function child(socketPath: string): number {
  using channel = UnixStream.connectSync(socketPath);
  process.send?.("connected");

  const marker = new Uint8Array(1);
  using received = channel.recvFdsExactIntoSync(1, marker);
  if (received.bytesRead !== 1 || marker[0] !== "F".charCodeAt(0)) {
    console.error(`child: bad marker (${received.bytesRead} bytes, ${marker[0]})`);
    return 1;
  }
  const fd = received.fds[0]!.fd;
  const buf = new Uint8Array(256);
  const contents = new TextDecoder().decode(buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)));
  if (contents !== CONTENTS) {
    console.error(`child: unexpected contents ${JSON.stringify(contents)}`);
    return 1;
  }
  try {
    writeSync(fd, "x");
    console.error("child: a write through the read-only fd succeeded");
    return 1;
  } catch (e) {
    console.log(`child ${process.pid}: got marker 'F' and an fd; read ${JSON.stringify(contents)}; write refused (${(e as NodeJS.ErrnoException).code})`);
  }
  channel.sendFdsSync("Y");
  return 0;
}

async function parent(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "multiprocess-"));
  let proc: ReturnType<typeof Bun.spawn> | undefined;
  try {
    const socketPath = join(dir, "channel.sock");
    using listener = UnixListener.bindSync(socketPath, { mode: 0o600 });
    const filePath = join(dir, "shared.txt");
    writeFileSync(filePath, CONTENTS);

    let connected!: () => void;
    const childConnected = new Promise<void>((resolve) => (connected = resolve));
    proc = Bun.spawn([process.execPath, import.meta.path, "--child", socketPath], {
      stdio: ["ignore", "inherit", "inherit"],
      ipc(message) {
        if (message === "connected") connected();
      },
    });
    const exited = proc.exited;
    const deadline = (ms: number, what: string) =>
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms).unref());

    await Promise.race([
      childConnected,
      exited.then((code) => Promise.reject(new Error(`child exited (${code}) before connecting`))),
      deadline(10_000, "the child to connect"),
    ]);
    using channel = listener.acceptSync(); // the connection is already queued: no blocking
    console.log(`parent: child ${proc.pid} connected to ${socketPath}`);

    const readOnly = openSync(filePath, "r");
    try {
      channel.sendFdsAllSync("F", [readOnly]);
    } finally {
      closeSync(readOnly);
    }
    console.log("parent: sent marker 'F' with a read-only fd");

    const code = await Promise.race([exited, deadline(10_000, "the child to finish")]);
    // The child wrote its ack before exiting, so this receive returns at once (EOF if it never replied).
    using ack = channel.recvFdsSync(0);
    const reply = new TextDecoder().decode(ack.data);
    if (code !== 0 || reply !== "Y") throw new Error(`child failed: exit ${code}, reply ${JSON.stringify(reply)}`);
    console.log("parent: child acknowledged with 'Y' and exited 0");
    return 0;
  } catch (e) {
    console.error(`parent: ${(e as Error).message}`);
    proc?.kill();
    return 1;
  } finally {
    if (proc !== undefined) await proc.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}
