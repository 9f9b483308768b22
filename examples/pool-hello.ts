// A 4-worker Bun.serve app on one port, zero-downtime reloads on SIGHUP:
//   bun examples/pool-hello.ts            then   kill -HUP <pid>   /   curl localhost:8080
import { startPool, joinPool, isPoolWorker } from "unix-ancillary/pool";

if (isPoolWorker()) {
  // the worker: a plain Bun.serve app plus joinPool() and ready()
  const w = await joinPool();
  await w.serve({ fetch: () => new Response(`hello from worker ${process.pid}\n`) });
  await w.ready(); // warm: start accepting
} else {
  // the supervisor: opens :8080 once, runs 4 workers, rolls them on SIGHUP, drains on SIGTERM
  const pool = await startPool({
    script: import.meta.path,
    workers: 4,
    listen: [{ port: Number(process.env.PORT ?? 8080), host: "127.0.0.1" }],
    handleSignals: true,
    readyTimeoutMs: Number(process.env.READY_TIMEOUT_MS ?? 30_000), // spawn -> ready() limit
  });
  console.log(`supervisor ${process.pid} serving on :${pool.sockets[0]!.info.port}, workers ${pool.pids().join(" ")}`);
}
