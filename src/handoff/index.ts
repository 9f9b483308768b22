/**
 * unix-ancillary/handoff: zero-downtime socket handoff for Bun servers.
 *
 * Old process:
 *   const ho = serveHandoff({ http: server }, { path });            // or ho.spawn([...argv]) tableflip-style
 *   await ho.upgraded;                                               // successor adopted + said ready
 *   await ho.drain({ graceMs: 10_000, hardMs: 30_000, exit: true });
 *
 * New process:
 *   const h = await requestHandoff({ path });                       // or requestHandoff() when spawned
 *   const app = await adoptBunServe(h.take("http"), { fetch });     // Bun.serve on the received socket
 *   await h.ready();
 *
 * See the README section "Zero-downtime handoff" for the protocol, guarantees and limits.
 */
export { serveHandoff, HandoffServer, defaultControlPath, spawnSuccessor, type ServeHandoffOptions, type UpgradeResult, type UpgradePeer, type HandoffState, type DrainOptions } from "./server.ts";
export { requestHandoff, Handoff, isHandoffChild, HANDOFF_FD_ENV, HANDOFF_PATH_ENV, type ReceivedListener, type RequestHandoffOptions, type ReadyResult } from "./client.ts";
export { adoptBunListen, adoptNetServer, adoptNodeHttp, type AdoptedNodeHttp, type ListenerInput } from "./adopt.ts";
export { adoptBunServe, nodeBridge, PROBE_HEADER, type AdoptBunServeOptions, type AdoptedBunServe } from "./bun-serve.ts";
export { type SpawnOptions, type SpawnResult } from "./spawn.ts";
export { type PeerPolicy } from "./policy.ts";
export { type HandoffSource, drainBunServer, drainSource } from "./sources.ts";
export { drainListener, bunServe, connectionFds, hasUnreadInput, type DrainAdapter, type DrainConnection, type DrainListenerOptions, type DrainReport } from "./drain.ts";
export { AcceptGate } from "./gate.ts";
export { describeSocket, listeningSockets, type ListenerInfo, type ListenerFamily, type ListenerType } from "../sockinfo.ts";
export { PROTOCOL_VERSION } from "./protocol.ts";
export {
  listenFds,
  sdNotify,
  sdNotifyReady,
  sdNotifyReloading,
  sdNotifyStopping,
  sdNotifyMainPid,
  sdNotifyFdStore,
  sdNotifyFdStoreRemove,
  sdNotifyWatchdog,
  LISTEN_FDS_START,
  type ListenFd,
  type ListenFdsOptions,
  type SdNotifyOptions,
  type NotifyState,
} from "../systemd.ts";

import type { Subprocess } from "bun";
export type { Subprocess };
