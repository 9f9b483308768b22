/**
 * The outcome of a committed handoff, shared by the server (serveHandoff's `upgraded`) and spawn mode
 * (SpawnResult), so neither module imports the other for it. Holds no fds.
 */

/** What `upgraded` resolves with once the successor committed (it serves; this process no longer accepts). */
export interface UpgradeResult {
  /** The successor's pid (from SO_PEERCRED, else its hello). */
  pid: number;
  uid: number;
  /** Names the successor says it adopted. */
  adopted: string[];
  /** Names offered. */
  offered: string[];
  /** Accept of the upgrader -> serving received (the commit), in ms. */
  latencyMs: number;
  /** Wall-clock time (performance.timeOrigin + performance.now(), ms) at which this process stopped accepting. */
  stoppedAcceptingAt: number;
}
