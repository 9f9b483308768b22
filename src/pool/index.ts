/**
 * unix-ancillary/pool: N Bun worker processes on one shared listening socket, rolling restarts that
 * lose nothing, crash restarts with backoff, status over a control socket. See docs/pool.md.
 *
 * Supervisor:  const pool = await startPool({ script: "app.ts", workers: 4, listen: [{ port: 8080 }] });
 *              await pool.reload();                      // or SIGHUP with handleSignals: true
 * Worker:      const w = await joinPool(); await w.serve({ fetch }); await w.ready();
 */
export { startPool, poolControl, Pool, PoolError, type PoolOptions, type PoolStatus, type WorkerInfo, type WorkerState, type ReloadReport } from "./supervisor.ts";
export { joinPool, isPoolWorker, PoolWorker, POOL_FD_ENV, POOL_WORKER_ENV, type JoinPoolOptions, type WorkerStats } from "./worker.ts";
export { openListeners, openTcpListener, openUnixListener, type ListenSpec, type PoolListener } from "./listen.ts";
