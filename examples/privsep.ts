/**
 * privsep: privilege separation by handing over a listening socket.
 *
 * The "privileged" side binds a TCP listener (here 127.0.0.1 on a free port; in real life a port below
 * 1024 that needs root), sends its fd over a Unix socket, and drops its own copy. The "worker" side,
 * which never calls bind, receives the fd, serves it with Bun.listen({ fd }), and answers a client on
 * the very address the privileged side bound. Both halves run in one process to keep the demo short;
 * see multiprocess.ts for a real process boundary.
 *
 * Run: bun examples/privsep.ts
 */
import { readFileSync } from "node:fs";
import { UnixStream } from "unix-ancillary";

const [privileged, worker] = UnixStream.pair();
using _privileged = privileged;
using _worker = worker;

// --- privileged side -------------------------------------------------------------------------------
const bound = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
const address = `${bound.hostname}:${bound.port}`;
// Bun.listen exposes its socket as an undocumented `fd` property.
const boundFd = (bound as unknown as { fd: number }).fd;
privileged.sendFdsSync("listener", [boundFd]);
bound.stop(true); // drop the privileged copy: from now on only the worker holds the socket
console.log(`privileged: bound ${address}, sent the listener, closed its own copy`);

// --- worker side -----------------------------------------------------------------------------------
using received = worker.recvFdsExactSync(1);
const listenerFd = received.fds[0]!;
if (process.platform === "linux") {
  const flags = parseInt(/^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${listenerFd.fd}`, "utf8"))![1]!, 8);
  console.log(`worker: received fd ${listenerFd.fd}, close-on-exec: ${(flags & 0o2000000) !== 0}`);
}
// Bun.listen adopts the fd (its stop() closes it), so ownership moves out of the OwnedFd.
const served = Bun.listen({
  fd: listenerFd.release(),
  socket: {
    open(s: { end(data: string): void }) {
      s.end("hello from the worker\n");
    },
    data() {},
  },
} as unknown as Parameters<typeof Bun.listen>[0]);
console.log(`worker: serving the received listener without calling bind`);

// --- a client of the privileged address ------------------------------------------------------------
const reply = await new Promise<string>((resolve, reject) => {
  let text = "";
  const timer = setTimeout(() => reject(new Error("no reply within 10 s")), 10_000);
  Bun.connect({
    hostname: "127.0.0.1",
    port: bound.port,
    socket: {
      data(_s, chunk) {
        text += new TextDecoder().decode(chunk);
      },
      close() {
        clearTimeout(timer);
        resolve(text);
      },
      error(_s, e) {
        clearTimeout(timer);
        reject(e);
      },
    },
  }).catch(reject);
});
served.stop(true);
console.log(`client: ${address} answered "${reply.trim()}"`);
if (reply !== "hello from the worker\n") {
  console.error("unexpected reply");
  process.exit(1);
}
